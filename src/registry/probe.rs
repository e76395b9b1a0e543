//! The readiness probe: `GET /v2/` with hoist's own credentials. The registry is usable when
//! it answers 200 to them; a 401 after following its challenge means the credentials are
//! wrong (or missing), anything else that it is down or broken.

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};

use super::error::{status_error, transport_error};
use super::{Registry, RegistryError, observe};

const OP: &str = "GET /v2/";

impl Registry {
    /// Asks the registry whether hoist may use it; one request, or two after a challenge.
    pub async fn probe(&self) -> Result<(), RegistryError> {
        let url = self.url("/v2/");
        let mut challenged = false;
        loop {
            let mut req = self.http.get(url.clone());
            let mut authorized = false;
            if let Some(h) = self.auth.header(&self.http, &[]).await? {
                req = req.header(AUTHORIZATION, h);
                authorized = true;
            }
            let resp = match observe::timed(OP, self.idle, req.send()).await {
                Err(_) => {
                    return Err(RegistryError::Timeout {
                        op: OP.into(),
                        secs: self.idle.as_secs(),
                    });
                }
                Ok(Err(e)) => return Err(transport_error(OP, &e, self.idle)),
                Ok(Ok(resp)) => resp,
            };
            if resp.status() == StatusCode::UNAUTHORIZED && !challenged {
                challenged = true;
                let challenge = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok());
                self.auth.forget(&[]);
                if self.auth.learn(challenge) || !authorized {
                    continue;
                }
            }
            if resp.status().is_success() {
                return Ok(());
            }
            return Err(status_error(OP, resp).await);
        }
    }
}
