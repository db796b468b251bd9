//! Listing: a repository's tags and the registry's catalog, following
//! the `Link: <…>; rel="next"` pages the distribution spec defines.

use reqwest::Url;
use reqwest::header::LINK;

use super::auth::Scope;
use super::transport::{Registry, status_error};
use super::{Client, RegistryError, Result};
use crate::reference::Repository;

/// Pages followed at most (a registry looping on `next` stops here).
const MAX_PAGES: usize = 1000;

impl Client {
    /// Every tag of `repo`, in the registry's order; `page_size` asks
    /// for pages of that many (`?n=`), else the registry's default.
    pub async fn tags_list(
        &self,
        repo: &Repository,
        page_size: Option<u32>,
    ) -> Result<Vec<String>> {
        let registry = self.registry(repo.domain()).await?;
        let mut url = registry.url(&format!("v2/{}/tags/list", repo.path()))?;
        if let Some(n) = page_size {
            url.query_pairs_mut().append_pair("n", &n.to_string());
        }
        let what = format!("tags of {repo}");
        self.list(&registry, &Scope::pull(repo), &what, url, "tags")
            .await
    }

    /// Every repository path the registry lists (`registry:catalog:*`).
    pub async fn catalog(&self, domain: &str, page_size: Option<u32>) -> Result<Vec<String>> {
        let registry = self.registry(domain).await?;
        let mut url = registry.url("v2/_catalog")?;
        if let Some(n) = page_size {
            url.query_pairs_mut().append_pair("n", &n.to_string());
        }
        let scope = Scope::from_raw("registry:catalog:*");
        self.list(
            &registry,
            &scope,
            &format!("catalog of {domain}"),
            url,
            "repositories",
        )
        .await
    }

    async fn list(
        &self,
        registry: &Registry,
        scope: &Scope,
        what: &str,
        first: Url,
        field: &str,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                break;
            }
            let mut build = |http: &reqwest::Client| Ok(http.get(url.clone()));
            let resp = self.send(registry, scope, what, true, &mut build).await?;
            if !resp.status().is_success() {
                return Err(status_error(registry, what, resp).await);
            }
            next = next_link(&resp).and_then(|link| resp.url().join(&link).ok());
            let body = resp.bytes().await.map_err(|e| RegistryError::Http {
                registry: registry.domain.clone(),
                what: what.to_string(),
                url: url.to_string(),
                error: e,
            })?;
            let value: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                    registry: registry.domain.clone(),
                    what: what.to_string(),
                    message: format!("bad JSON: {e}"),
                })?;
            // A repository without tags may answer `"tags": null`.
            if let Some(items) = value.get(field).and_then(|v| v.as_array()) {
                out.extend(items.iter().filter_map(|t| t.as_str().map(str::to_string)));
            }
        }
        Ok(out)
    }
}

/// The target of `Link: </v2/…?last=x&n=2>; rel="next"`.
fn next_link(resp: &reqwest::Response) -> Option<String> {
    resp.headers().get_all(LINK).iter().find_map(|v| {
        let v = v.to_str().ok()?;
        v.split(',').find_map(|part| {
            let (target, params) = part.split_once(';')?;
            let is_next = params.split(';').any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            is_next.then(|| target.to_string())
        })
    })
}
