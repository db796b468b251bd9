"""A small Flask app: a greeting at / and a health check at /healthz."""

import os
import platform

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def index():
    return f"hello from flask on python {platform.python_version()}\n"


@app.get("/healthz")
def healthz():
    return jsonify(status="ok", user=os.getuid())


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "8000")))
