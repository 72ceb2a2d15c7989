//! Redis Sentinel: finding the master the Sentinels name, and finding it again after a
//! failover.
//!
//! A `redis+sentinel://` URL names Sentinels and a service (see
//! [`SentinelUrl`](crate::config::redis_url::SentinelUrl)). The store asks the Sentinels in
//! turn (`SENTINEL GET-MASTER-ADDR-BY-NAME <service>`) which server is the master, checks
//! that the server says so itself (`ROLE`: a Sentinel may not have seen a failover yet),
//! and connects to it. When Redis stops answering, the breaker opens, and its background
//! probe asks the Sentinels again before it pings: after a failover it finds the promoted
//! replica, drops the connections to the old master and connects to the new one. The new
//! master is another server, with its own `run_id`: the store epoch rotates (see
//! [`super::epoch`]) and every entry stored before is dead, since a promoted replica may
//! have missed the last writes of the old master.

use std::time::Duration;

use crate::config::redis_url::SentinelUrl;

/// Where the Sentinels of a store are, and what they call its master.
#[derive(Debug, Clone)]
pub(crate) struct Sentinels {
    url: SentinelUrl,
    /// One client per Sentinel, in the order to ask them.
    clients: Vec<redis::Client>,
    /// The store's command timeout: each Sentinel gets twice that, the master's `ROLE` once.
    timeout: Duration,
}

/// The master's address, as the Sentinels give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Master {
    pub(crate) host: String,
    pub(crate) port: u16,
}

impl Sentinels {
    /// The Sentinels of `url`, asked within `timeout` (the store's command timeout).
    ///
    /// # Errors
    /// The reason, when a Sentinel's address does not make a client.
    pub(crate) fn new(url: SentinelUrl, timeout: Duration) -> Result<Self, String> {
        let clients = (0..url.sentinels.len())
            .filter_map(|i| url.sentinel_url(i))
            .map(|one| super::client_with_keepalive(&one).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Sentinels {
            url,
            clients,
            timeout,
        })
    }

    /// A client for the master at `master`, with the URL's credentials and database, and
    /// TCP keepalive.
    pub(crate) fn client_for(&self, master: &Master) -> redis::RedisResult<redis::Client> {
        super::client_with_keepalive(&self.url.master_url(&master.host, master.port))
    }

    /// The service's name at the Sentinels.
    pub(crate) fn service(&self) -> &str {
        &self.url.service
    }

    /// The master now: the first Sentinel that names one whose `ROLE` says `master`, each
    /// Sentinel and the check bounded by the timeout.
    ///
    /// # Errors
    /// What each Sentinel answered, when none named a master that says it is one.
    pub(crate) async fn master(&self) -> Result<Master, String> {
        let timeout = self.timeout;
        let mut answers = Vec::new();
        for (i, client) in self.clients.iter().enumerate() {
            let (host, port) = &self.url.sentinels[i];
            match tokio::time::timeout(timeout * 2, self.ask(client, timeout)).await {
                Ok(Ok(master)) => return Ok(master),
                Ok(Err(error)) => answers.push(format!("{host}:{port}: {error}")),
                Err(_) => answers.push(format!(
                    "{host}:{port}: no answer within {} ms",
                    (timeout * 2).as_millis()
                )),
            }
        }
        Err(format!(
            "no Sentinel named a master for `{}`: {}",
            self.url.service,
            answers.join("; ")
        ))
    }

    /// One Sentinel's master, checked with the master itself.
    async fn ask(&self, sentinel: &redis::Client, timeout: Duration) -> Result<Master, String> {
        let mut conn = sentinel
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        let named: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&self.url.service)
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        let (host, port) = named.ok_or_else(|| "does not monitor it".to_owned())?;
        let master = Master { host, port };
        let client = self.client_for(&master).map_err(|e| e.to_string())?;
        let role = tokio::time::timeout(timeout, async {
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("ROLE")
                .query_async::<Vec<redis::Value>>(&mut conn)
                .await
        })
        .await
        .map_err(|_| format!("{}:{} did not answer ROLE", master.host, master.port))?
        .map_err(|e| format!("{}:{}: {e}", master.host, master.port))?;
        match role.first() {
            Some(redis::Value::BulkString(role)) if role.as_slice() == b"master" => Ok(master),
            _ => Err(format!(
                "names {}:{}, which is not a master (yet)",
                master.host, master.port
            )),
        }
    }
}

/// A Sentinel's answer as a connection error (`reason` says what each Sentinel answered).
pub(crate) fn error(reason: String) -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::MasterNameNotFoundBySentinel,
        "Redis Sentinel",
        reason,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_sentinel_answering_is_an_error_naming_each() {
        let url = SentinelUrl::parse("redis+sentinel://127.0.0.1:1,127.0.0.1:2/mymaster")
            .unwrap()
            .unwrap();
        let sentinels = Sentinels::new(url, Duration::from_millis(200)).unwrap();
        let error = sentinels.master().await.unwrap_err();
        assert!(error.contains("`mymaster`"), "{error}");
        assert!(error.contains("127.0.0.1:1: "), "{error}");
        assert!(error.contains("127.0.0.1:2: "), "{error}");
    }
}
