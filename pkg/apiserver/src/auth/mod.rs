//! Authentication: who is asking. Client certificates are verified by TLS and their
//! subject read here; bearer tokens are looked up in the configured token table, then
//! checked as service account tokens ([`serviceaccount`]) and bootstrap tokens
//! ([`bootstrap_token`]). What a user may do is [`authz`]'s and [`rbac`]'s.

pub mod authz;
pub mod bootstrap_policy;
pub mod bootstrap_token;
pub mod impersonation;
pub mod legacy_tokens;
pub mod rbac;
#[cfg(test)]
mod request_tests;
pub mod serviceaccount;

use std::collections::HashMap;
use std::path::Path;

use k1s_apimachinery::Status;

/// An authenticated user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// User name (certificate CN, token user).
    pub name: String,
    /// Groups (certificate O, token groups), plus `system:authenticated`.
    pub groups: Vec<String>,
    /// Unique id, when the source gives one.
    pub uid: String,
    /// Extra attributes (service account tokens: the bound pod and node, the token id).
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// A user with groups; `system:authenticated` is added.
    pub fn new(name: impl Into<String>, groups: impl IntoIterator<Item = String>) -> Self {
        let mut groups: Vec<String> = groups.into_iter().collect();
        if !groups.iter().any(|g| g == "system:authenticated") {
            groups.push("system:authenticated".into());
        }
        Self {
            name: name.into(),
            groups,
            uid: String::new(),
            extra: Default::default(),
        }
    }

    /// The user of a request without credentials (upstream's anonymous authenticator).
    pub fn anonymous() -> Self {
        Self {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
            uid: String::new(),
            extra: Default::default(),
        }
    }

    /// The identity in-process components use: a member of `system:masters`.
    pub fn loopback() -> Self {
        Self::new("system:apiserver", ["system:masters".to_string()])
    }
}

/// A static table of bearer tokens (upstream's `--token-auth-file` format: CSV lines of
/// `token,user,uid,"group1,group2"`).
#[derive(Debug, Default, Clone)]
pub struct TokenTable {
    tokens: HashMap<String, UserInfo>,
}

impl TokenTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one token.
    pub fn insert(&mut self, token: impl Into<String>, user: UserInfo) {
        self.tokens.insert(token.into(), user);
    }

    /// Reads a token file.
    pub fn load(path: &Path) -> Result<Self, std::io::Error> {
        let text = std::fs::read_to_string(path)?;
        let mut table = Self::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_csv(line);
            if fields.len() < 3 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{}:{}: expected token,user,uid[,groups]",
                        path.display(),
                        n + 1
                    ),
                ));
            }
            let groups: Vec<String> = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            let mut user = UserInfo::new(fields[1].clone(), groups);
            user.uid = fields[2].clone();
            table.insert(fields[0].clone(), user);
        }
        Ok(table)
    }

    /// The user a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<&UserInfo> {
        self.tokens.get(token)
    }
}

fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Upstream's answer to a request without valid credentials.
pub fn unauthorized() -> Status {
    Status::unauthorized("Unauthorized")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_lines_with_quoted_groups_parse() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokens.csv");
        std::fs::write(&p, "abc,alice,u1,\"dev,ops\"\n# comment\nxyz,bob,u2\n").unwrap();
        let t = TokenTable::load(&p).unwrap();
        let alice = t.authenticate("abc").unwrap();
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.groups, vec!["dev", "ops", "system:authenticated"]);
        assert_eq!(t.authenticate("xyz").unwrap().uid, "u2");
        assert!(t.authenticate("nope").is_none());
    }
}
