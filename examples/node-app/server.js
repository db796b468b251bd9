// A small HTTP service: a greeting at / and a JSON health check at /healthz.
'use strict';

const http = require('node:http');
const { name, version } = require('./package.json');

const port = Number(process.env.PORT || 3000);

const server = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ status: 'ok', uptime: process.uptime() }));
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(`hello from ${name} ${version} on node ${process.version}\n`);
});

server.listen(port, () => console.log(`listening on ${port}`));

// Stop cleanly on docker stop.
process.on('SIGTERM', () => server.close(() => process.exit(0)));
