//! Client of a Confluent-compatible schema registry: producers register the schema they
//! write once, consumers fetch a writer schema by id once and keep it.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use apache_avro::Schema;
use reqwest::Url;
use serde::Deserialize;

use crate::Error;

/// The registry's own media type; it also accepts plain JSON, but says this one back.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Attempts at a registration the registry failed on its side (50, 200, 800 ms apart).
pub const REGISTER_ATTEMPTS: u32 = 4;

/// Credentials for registries behind HTTP basic auth (Confluent Cloud, Karapace, Apicurio).
#[derive(Clone)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A registry client with a cache of schemas by id; ids are immutable in the registry, so
/// the cache never needs invalidating.
#[derive(Debug)]
pub struct RegistryClient {
    base: Url,
    http: reqwest::Client,
    auth: Option<RegistryAuth>,
    by_id: RwLock<HashMap<u32, Arc<Schema>>>,
}

#[derive(Deserialize)]
struct IdResponse {
    id: u32,
}

#[derive(Deserialize)]
struct SchemaResponse {
    schema: String,
}

#[derive(Deserialize)]
struct ErrorResponse {
    message: String,
}

impl RegistryClient {
    pub fn new(base: &str, auth: Option<RegistryAuth>, timeout: Duration) -> Result<Self, Error> {
        let base = Url::parse(base).map_err(|e| Error::Registry {
            what: format!("URL {base:?}"),
            status: 0,
            message: e.to_string(),
        })?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|source| Error::RegistryUnreachable {
                what: "client setup".into(),
                source,
            })?;
        Ok(Self {
            base,
            http,
            auth,
            by_id: RwLock::default(),
        })
    }

    /// Registers `schema_json` under `subject` (idempotent in the registry: the same schema
    /// gets the same id) and returns its global id.
    ///
    /// Being idempotent, a registration that failed on the registry's side is tried again,
    /// up to [`REGISTER_ATTEMPTS`] times: registries answer 5xx to concurrent registrations
    /// of one schema (Apicurio's content table reports a duplicate key), and a producer
    /// starting beside others should not fail for that.
    pub async fn register(&self, subject: &str, schema_json: &str) -> Result<u32, Error> {
        let url = self.url(&["subjects", subject, "versions"]);
        let body = serde_json::json!({ "schema": schema_json });
        let what = format!("register subject {subject}");
        let mut pause = Duration::from_millis(50);
        for attempt in 1.. {
            let request = self.http.post(url.clone()).json(&body);
            match self.send::<IdResponse>(request, &what).await {
                Ok(IdResponse { id }) => return Ok(id),
                Err(e) if e.is_retryable() && attempt < REGISTER_ATTEMPTS => {
                    tracing::debug!(%subject, attempt, error = %e, "registration failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 4;
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop returns by its last attempt")
    }

    /// The writer schema with this id, from the cache or the registry.
    pub async fn schema_by_id(&self, id: u32) -> Result<Arc<Schema>, Error> {
        if let Some(schema) = self.cached(id) {
            return Ok(schema);
        }
        let what = format!("fetch schema id {id}");
        let request = self
            .http
            .get(self.url(&["schemas", "ids", &id.to_string()]));
        let SchemaResponse { schema } = self.send(request, &what).await?;
        let schema = Arc::new(Schema::parse_str(&schema).map_err(|e| Error::Registry {
            what,
            status: 200,
            message: format!("unparseable schema: {e}"),
        })?);
        self.by_id
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(id, schema.clone());
        Ok(schema)
    }

    fn cached(&self, id: u32) -> Option<Arc<Schema>> {
        let cache = self.by_id.read().unwrap_or_else(|p| p.into_inner());
        cache.get(&id).cloned()
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("http(s) URLs have a path")
            .pop_if_empty()
            .extend(segments);
        url
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<T, Error> {
        let mut request = request.header(reqwest::header::ACCEPT, CONTENT_TYPE);
        if let Some(auth) = &self.auth {
            request = request.basic_auth(&auth.username, Some(&auth.password));
        }
        let unreachable = |source| Error::RegistryUnreachable {
            what: what.to_owned(),
            source,
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<ErrorResponse>(&text)
                .map(|e| e.message)
                .unwrap_or(text);
            return Err(Error::Registry {
                what: what.to_owned(),
                status: status.as_u16(),
                message,
            });
        }
        response.json().await.map_err(unreachable)
    }
}
