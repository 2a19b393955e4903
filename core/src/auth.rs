//! Connection authentication: the connect hook and the built-in JWT verifier.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};
use crate::hub::socket::Handshake;

/// Who a connection is, as decided by the connect hook.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// The user id; the socket joins `user:<id>`.
    pub user_id: Option<String>,
    /// Initial application data of the socket.
    pub data: Value,
}

impl Identity {
    /// An anonymous connection.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// A connection of user `id`.
    pub fn user(id: impl Into<String>) -> Self {
        Self { user_id: Some(id.into()), data: Value::Null }
    }

    /// With initial socket data.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }
}

/// A refused connection: the message (and optional data) the client is told.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub message: String,
    pub data: Option<Value>,
}

impl Rejection {
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), data: None }
    }
}

impl<E: std::fmt::Display> From<E> for Rejection {
    fn from(e: E) -> Self {
        Self::new(e.to_string())
    }
}

pub(crate) type AuthHook = Arc<dyn Fn(Arc<Handshake>) -> BoxFuture<'static, Result<Identity, Rejection>> + Send + Sync>;

pub(crate) fn auth_hook<F, Fut>(f: F) -> AuthHook
where
    F: Fn(Arc<Handshake>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Identity, Rejection>> + Send + 'static,
{
    Arc::new(move |h| Box::pin(f(h)))
}

/// Verifies JWTs with one pinned algorithm (HS256 or RS256), checks `exp`
/// with a leeway, refuses `alg: none`. The `sub` claim becomes the user id
/// and the whole claim set the socket data.
#[derive(Clone)]
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier").field("algorithms", &self.validation.algorithms).finish_non_exhaustive()
    }
}

impl JwtVerifier {
    fn new(key: DecodingKey, alg: Algorithm) -> Self {
        let mut validation = Validation::new(alg);
        validation.leeway = 30;
        validation.validate_exp = true;
        validation.required_spec_claims = ["exp".to_owned()].into_iter().collect();
        Self { key, validation }
    }

    /// HMAC-SHA256 with a shared secret.
    pub fn hs256(secret: impl AsRef<[u8]>) -> Self {
        Self::new(DecodingKey::from_secret(secret.as_ref()), Algorithm::HS256)
    }

    /// RSA-SHA256 with a PEM public key.
    pub fn rs256_pem(public_key_pem: impl AsRef<[u8]>) -> Result<Self> {
        let key = DecodingKey::from_rsa_pem(public_key_pem.as_ref())
            .map_err(|e| Error::new(ErrorKind::InvalidArgument, format!("bad RSA public key: {e}")))?;
        Ok(Self::new(key, Algorithm::RS256))
    }

    /// Clock skew tolerated on `exp`/`nbf`, in seconds (default 30).
    pub fn leeway(mut self, seconds: u64) -> Self {
        self.validation.leeway = seconds;
        self
    }

    /// Also require this `aud` claim.
    pub fn audience(mut self, aud: &str) -> Self {
        self.validation.set_audience(&[aud]);
        self
    }

    /// Also require this `iss` claim.
    pub fn issuer(mut self, iss: &str) -> Self {
        self.validation.set_issuer(&[iss]);
        self
    }

    /// Check `token` and return the identity it carries.
    pub fn verify(&self, token: &str) -> Result<Identity> {
        let data = jsonwebtoken::decode::<Value>(token, &self.key, &self.validation)
            .map_err(|e| Error::new(ErrorKind::Unauthorized, format!("invalid token: {e}")))?;
        let user_id = match data.claims.get("sub") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        Ok(Identity { user_id, data: data.claims })
    }

    pub(crate) fn into_hook(self) -> AuthHook {
        let v = Arc::new(self);
        auth_hook(move |hs: Arc<Handshake>| {
            let v = v.clone();
            async move {
                let token = hs.token().ok_or_else(|| Rejection::new("missing token"))?;
                v.verify(token).map_err(|e| Rejection::new(e.message().to_owned()))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
    }

    fn hs(claims: Value, secret: &str) -> String {
        encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes())).unwrap()
    }

    #[test]
    fn hs256_accepts_valid_and_sets_user() {
        let v = JwtVerifier::hs256("s3cret");
        let id = v.verify(&hs(json!({"sub":"alice","exp": now() + 60, "role":"admin"}), "s3cret")).unwrap();
        assert_eq!(id.user_id.as_deref(), Some("alice"));
        assert_eq!(id.data["role"], "admin");
    }

    #[test]
    fn rejects_wrong_secret_expired_and_missing_exp() {
        let v = JwtVerifier::hs256("s3cret").leeway(0);
        let bad = |t: String| v.verify(&t).unwrap_err().kind();
        assert_eq!(bad(hs(json!({"sub":"a","exp": now() + 60}), "other")), ErrorKind::Unauthorized);
        assert_eq!(bad(hs(json!({"sub":"a","exp": now() - 10}), "s3cret")), ErrorKind::Unauthorized);
        assert_eq!(bad(hs(json!({"sub":"a"}), "s3cret")), ErrorKind::Unauthorized);
    }

    #[test]
    fn leeway_tolerates_small_skew() {
        let v = JwtVerifier::hs256("k").leeway(60);
        assert!(v.verify(&hs(json!({"sub":"a","exp": now() - 10}), "k")).is_ok());
    }

    #[test]
    fn refuses_alg_none() {
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let token = format!("{}.{}.", b64(json!({"alg":"none","typ":"JWT"})), b64(json!({"sub":"a","exp": now()+60})));
        assert!(JwtVerifier::hs256("k").verify(&token).is_err());
    }

    #[test]
    fn algorithm_is_pinned() {
        // An HS384 token signed with the right secret is still refused by an HS256 verifier.
        let t = encode(
            &Header::new(Algorithm::HS384),
            &json!({"sub":"a","exp": now()+60}),
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert!(JwtVerifier::hs256("k").verify(&t).is_err());
    }
}
