//! [`Rest`]: JSON over HTTP to a mesh's gateway, as a frontend calls it.

use serde_json::Value;

use crate::TestMesh;

/// A REST client for the gateway of a [`TestMesh`]; `base` is `http://<gateway>` for calls the
/// helpers do not cover.
pub struct Rest {
    pub base: String,
    pub http: reqwest::Client,
}

impl Rest {
    /// A client for `mesh`'s gateway (which must be running).
    pub fn new(mesh: &TestMesh) -> Self {
        Self {
            base: format!("http://{}", mesh.gateway_addr()),
            http: reqwest::Client::new(),
        }
    }

    /// `method path` with an optional bearer token and JSON body: the status and the body as
    /// JSON (a string when it is not JSON).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.call_with(method, path, token, &[], body).await
    }

    /// [`Self::call`] with extra request headers.
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.http.request(
            method.parse().expect("an HTTP method"),
            format!("{}{path}", self.base),
        );
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a readable body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}
