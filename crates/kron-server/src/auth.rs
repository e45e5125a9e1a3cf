//! Bearer tokens, roles and tenants.
//!
//! Two sources of tokens, both in the data directory:
//! * the admin token: `--cluster-token`, or `DIR/kron.token` (generated, mode 0600, when
//!   missing). It has the `admin` role and no tenant, and is also accepted for Raft traffic.
//! * `DIR/kron.tokens.json`: role-scoped tokens,
//!   `{"tokens": [{name, token | token_sha256, role, tenant_id?, not_before?, expires_at?}]}`
//!   (instants as ISO 8601 strings). Re-read whenever the file changes (rotation without
//!   restart); a file that does not parse grants nothing until it is fixed (fail closed).
//!
//! Tokens are compared by their SHA-256 digests, in constant time.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use kron_core::time::{parse_datetime, EpochMs};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::setup::SetupError;

/// The admin token's file in the data directory.
pub const ADMIN_TOKEN_FILE: &str = "kron.token";
/// The role-scoped tokens' file in the data directory.
pub const TOKENS_FILE: &str = "kron.tokens.json";

/// What a token may do. See [`Permission`] for what each route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Timers, history, cluster status, metrics.
    Reader,
    /// Register, heartbeat, poll, complete, fail.
    Worker,
    /// A reader that also writes timers.
    Operator,
    /// Everything, membership and shutdown included.
    Admin,
    /// Raft RPC only.
    Raft,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Worker => "worker",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Raft => "raft",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Some(match text {
            "reader" => Role::Reader,
            "worker" => Role::Worker,
            "operator" => Role::Operator,
            "admin" => Role::Admin,
            "raft" => Role::Raft,
            _ => return None,
        })
    }

    /// Whether the role grants `permission`.
    pub fn allows(self, permission: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Reader => matches!(permission, Read | AnyRole),
            Role::Operator => matches!(permission, Read | WriteTimers | AnyRole),
            Role::Worker => matches!(permission, Work | AnyRole),
            Role::Raft => matches!(permission, Raft),
        }
    }
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Any valid token of a role that uses the HTTP API (the API's description).
    AnyRole,
    /// Reading timers, history, cluster status, metrics.
    Read,
    /// Creating, changing and removing timers.
    WriteTimers,
    /// The worker protocol.
    Work,
    /// Membership and shutdown.
    Admin,
    /// Raft RPC.
    Raft,
}

/// Who made a request: a valid token's name, role and tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's name (`admin` for the admin token).
    pub name: String,
    pub role: Role,
    /// Only this tenant's timers and runs, when set.
    pub tenant: Option<String>,
}

impl Principal {
    /// Whether a timer of `tenant` (`None`: of no tenant) is visible to this principal: a
    /// tenant's token sees only its tenant; a token of no tenant sees every timer.
    pub fn sees(&self, tenant: Option<&str>) -> bool {
        match &self.tenant {
            Some(mine) => tenant == Some(mine.as_str()),
            None => true,
        }
    }
}

/// Why a request was not authenticated (always answered 401 `unauthorized`; the reason goes to
/// the audit log only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Unknown,
    NotYetValid(String),
    Expired(String),
}

impl AuthFailure {
    pub fn reason(&self) -> String {
        match self {
            AuthFailure::Missing => "no bearer token".to_string(),
            AuthFailure::Unknown => "unknown token".to_string(),
            AuthFailure::NotYetValid(name) => format!("token {name:?} is not valid yet"),
            AuthFailure::Expired(name) => format!("token {name:?} has expired"),
        }
    }
}

/// One entry of the token file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    token_sha256: Option<String>,
    role: String,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    not_before: Option<String>,
    #[serde(default)]
    expires_at: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    tokens: Vec<TokenEntry>,
}

/// A token as checked: its digest and what it grants.
#[derive(Debug, Clone)]
struct Grant {
    digest: [u8; 32],
    principal: Principal,
    not_before: Option<EpochMs>,
    expires_at: Option<EpochMs>,
}

/// The token file as last read, and how to tell it changed.
#[derive(Debug, Default)]
struct FileState {
    stamp: Option<(SystemTime, u64)>,
    grants: Vec<Grant>,
    error: Option<String>,
}

/// Authenticates bearer tokens and authorizes roles. See the module documentation.
#[derive(Debug)]
pub struct Auth {
    admin: [u8; 32],
    tokens_path: PathBuf,
    file: Mutex<FileState>,
}

/// The SHA-256 digest of `text`.
pub fn sha256(text: &[u8]) -> [u8; 32] {
    Sha256::digest(text).into()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Equal, in time independent of where they differ.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new random admin token: 32 bytes, hex.
fn generate_token() -> Result<String, SetupError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| SetupError::Io(format!("no randomness for a token: {e}")))?;
    Ok(hex(&bytes))
}

/// The admin token of data directory `dir`: `cluster_token` when given, else `DIR/kron.token`
/// (generated, readable only by its owner, when missing), with that file's path when it was
/// generated now. A node also takes it as its Raft token.
pub fn admin_token(
    dir: &Path,
    cluster_token: Option<&str>,
) -> Result<(String, Option<PathBuf>), SetupError> {
    match cluster_token {
        Some(token) if !token.is_empty() => Ok((token.to_string(), None)),
        Some(_) => Err(SetupError::Config(
            "invalid --cluster-token \"\": must not be empty".to_string(),
        )),
        None => {
            let path = dir.join(ADMIN_TOKEN_FILE);
            let (token, fresh) = admin_token_file(&path)?;
            Ok((token, fresh.then_some(path)))
        }
    }
}

/// Reads the admin token from `path`, or writes a new one there (owner-only) when missing.
/// Returns the token and whether it was generated now.
fn admin_token_file(path: &Path) -> Result<(String, bool), SetupError> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => return Ok((text.trim().to_string(), false)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(SetupError::io(path, e)),
    }
    let token = generate_token()?;
    write_private(path, &format!("{token}\n"))?;
    Ok((token, true))
}

/// Writes `text` to a new file readable only by its owner.
fn write_private(path: &Path, text: &str) -> Result<(), SetupError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| SetupError::io(path, e))?;
    #[cfg(unix)]
    {
        // The mode above applies only to a file created now.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| SetupError::io(path, e))?;
    }
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| SetupError::io(path, e))
}

fn parse_instant(arg: &'static str, text: &Option<String>) -> Result<Option<EpochMs>, String> {
    match text {
        None => Ok(None),
        Some(text) => parse_datetime(arg, text, "UTC")
            .map(Some)
            .map_err(|e| e.to_string()),
    }
}

fn read_grants(text: &str) -> Result<Vec<Grant>, String> {
    let file: TokenFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    file.tokens
        .into_iter()
        .map(|entry| {
            let name = entry.name;
            let role = Role::parse(&entry.role).ok_or_else(|| {
                format!(
                    "token {name:?}: invalid role {:?}: must be one of reader, worker, operator, admin, raft",
                    entry.role
                )
            })?;
            let digest = match (&entry.token, &entry.token_sha256) {
                (Some(token), None) if !token.is_empty() => sha256(token.as_bytes()),
                (None, Some(hexed)) => parse_hex32(&hexed.to_ascii_lowercase()).ok_or_else(|| {
                    format!("token {name:?}: token_sha256 must be 64 hex digits")
                })?,
                _ => {
                    return Err(format!(
                        "token {name:?}: exactly one of token, token_sha256 is required"
                    ))
                }
            };
            let tenant = entry.tenant_id.filter(|t| !t.is_empty());
            if let Some(tenant) = &tenant {
                kron_core::timer::TaskTarget::new("t", &serde_json::Value::Null, Some(tenant))
                    .map_err(|e| format!("token {name:?}: {e}"))?;
            }
            Ok(Grant {
                digest,
                not_before: parse_instant("not_before", &entry.not_before)
                    .map_err(|e| format!("token {name:?}: {e}"))?,
                expires_at: parse_instant("expires_at", &entry.expires_at)
                    .map_err(|e| format!("token {name:?}: {e}"))?,
                principal: Principal { name, role, tenant },
            })
        })
        .collect()
}

impl Auth {
    /// The tokens of data directory `dir`: the admin token is `cluster_token` when given,
    /// else `DIR/kron.token` (generated when missing). Also returns the admin token's file when
    /// it was generated now, for the server to say where it is.
    pub fn open(
        dir: &Path,
        cluster_token: Option<&str>,
    ) -> Result<(Auth, Option<PathBuf>), SetupError> {
        let (admin, generated) = admin_token(dir, cluster_token)?;
        let auth = Auth {
            admin: sha256(admin.as_bytes()),
            tokens_path: dir.join(TOKENS_FILE),
            file: Mutex::new(FileState::default()),
        };
        auth.refresh();
        Ok((auth, generated))
    }

    /// The last error reading the token file, if it does not parse.
    pub fn tokens_file_error(&self) -> Option<String> {
        self.lock().error.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FileState> {
        self.file.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Re-reads the token file if its modification time or size changed.
    fn refresh(&self) {
        let stamp = std::fs::metadata(&self.tokens_path)
            .ok()
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        let mut state = self.lock();
        if state.stamp == stamp {
            return;
        }
        state.stamp = stamp;
        if stamp.is_none() {
            state.grants.clear();
            state.error = None;
            return;
        }
        match std::fs::read_to_string(&self.tokens_path)
            .map_err(|e| e.to_string())
            .and_then(|text| read_grants(&text))
        {
            Ok(grants) => {
                state.grants = grants;
                state.error = None;
            }
            Err(e) => {
                state.grants.clear();
                state.error = Some(format!("{}: {e}", self.tokens_path.display()));
            }
        }
    }

    /// Who `authorization` (the header's value) is at `now`.
    pub fn authenticate(
        &self,
        authorization: Option<&str>,
        now: EpochMs,
    ) -> Result<Principal, AuthFailure> {
        let token = authorization
            .and_then(|value| {
                let (scheme, rest) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(AuthFailure::Missing)?;
        let digest = sha256(token.as_bytes());
        if same_digest(&digest, &self.admin) {
            return Ok(Principal {
                name: "admin".to_string(),
                role: Role::Admin,
                tenant: None,
            });
        }
        self.refresh();
        let state = self.lock();
        // Every entry is compared, so timing does not tell which one matched.
        let mut found: Option<&Grant> = None;
        for grant in &state.grants {
            if same_digest(&digest, &grant.digest) && found.is_none() {
                found = Some(grant);
            }
        }
        let grant = found.ok_or(AuthFailure::Unknown)?;
        if grant.not_before.is_some_and(|t| now < t) {
            return Err(AuthFailure::NotYetValid(grant.principal.name.clone()));
        }
        if grant.expires_at.is_some_and(|t| now >= t) {
            return Err(AuthFailure::Expired(grant.principal.name.clone()));
        }
        Ok(grant.principal.clone())
    }

    /// For the Raft listener: a `raft` or `admin` token, else why not (401 or 403).
    pub fn authorize_raft(
        &self,
        authorization: Option<&str>,
        now: EpochMs,
    ) -> Result<Principal, RaftRefusal> {
        let principal = self
            .authenticate(authorization, now)
            .map_err(RaftRefusal::Unauthorized)?;
        if principal.role.allows(Permission::Raft) {
            Ok(principal)
        } else {
            Err(RaftRefusal::Forbidden(principal))
        }
    }
}

/// Why a Raft request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RaftRefusal {
    /// 401 `{"error": "unauthorized"}`.
    Unauthorized(AuthFailure),
    /// 403 `{"error": "forbidden"}`.
    Forbidden(Principal),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        use Permission::*;
        let table = [
            (Role::Reader, [true, true, false, false, false, false]),
            (Role::Worker, [true, false, false, true, false, false]),
            (Role::Operator, [true, true, true, false, false, false]),
            (Role::Admin, [true, true, true, true, true, true]),
            (Role::Raft, [false, false, false, false, false, true]),
        ];
        for (role, want) in table {
            let got = [AnyRole, Read, WriteTimers, Work, Admin, Raft].map(|p| role.allows(p));
            assert_eq!(got, want, "{role:?}");
        }
    }

    #[test]
    fn generated_admin_token_is_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let (auth, generated) = Auth::open(dir.path(), None).unwrap();
        let path = generated.expect("generated");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let token = std::fs::read_to_string(&path).unwrap();
        let header = format!("Bearer {}", token.trim());
        assert_eq!(
            auth.authenticate(Some(&header), 0).unwrap().role,
            Role::Admin
        );
        let (again, generated) = Auth::open(dir.path(), None).unwrap();
        assert_eq!(generated, None);
        assert!(again.authenticate(Some(&header), 0).is_ok());
        assert_eq!(
            again.authenticate(Some("Bearer nope"), 0),
            Err(AuthFailure::Unknown)
        );
        assert_eq!(again.authenticate(None, 0), Err(AuthFailure::Missing));
    }

    #[test]
    fn raft_traffic_needs_a_raft_or_admin_token() {
        let dir = tempfile::tempdir().unwrap();
        let (auth, generated) = Auth::open(dir.path(), Some("shared")).unwrap();
        assert_eq!(generated, None);
        std::fs::write(
            dir.path().join(TOKENS_FILE),
            r#"{"tokens": [{"name": "r", "token": "raft-token", "role": "raft"},
                           {"name": "o", "token": "op-token", "role": "operator"}]}"#,
        )
        .unwrap();
        assert!(auth.authorize_raft(Some("Bearer shared"), 0).is_ok());
        assert!(auth.authorize_raft(Some("Bearer raft-token"), 0).is_ok());
        assert!(matches!(
            auth.authorize_raft(Some("Bearer op-token"), 0),
            Err(RaftRefusal::Forbidden(_))
        ));
        assert!(matches!(
            auth.authorize_raft(None, 0),
            Err(RaftRefusal::Unauthorized(AuthFailure::Missing))
        ));
        assert!(!dir.path().join(ADMIN_TOKEN_FILE).exists());
    }

    #[test]
    fn token_file_errors_fail_closed() {
        let dir = tempfile::tempdir().unwrap();
        let (auth, _) = Auth::open(dir.path(), Some("root")).unwrap();
        std::fs::write(
            dir.path().join(TOKENS_FILE),
            r#"{"tokens": [{"name": "r", "token": "t", "role": "boss"}]}"#,
        )
        .unwrap();
        assert_eq!(
            auth.authenticate(Some("Bearer t"), 0),
            Err(AuthFailure::Unknown)
        );
        let error = auth.tokens_file_error().unwrap();
        assert!(error.contains("invalid role \"boss\""), "{error}");
    }
}
