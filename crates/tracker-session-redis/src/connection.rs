//! One Redis, or a Redis Cluster: `sessions.url` names either, and the session state talks to
//! both through one connection type.

use std::time::Duration;

use redis::{
    aio::{ConnectionLike, ConnectionManager},
    cluster_async::ClusterConnection,
    Cmd, Pipeline, RedisFuture, Value,
};

/// The scheme of a cluster's `sessions.url`: `redis+cluster://host:7000,host:7001,host:7002`
/// (any of its nodes will do; the client learns the others and the slots from them).
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

/// A connection to one Redis (reconnecting by itself) or to a cluster (routing each command to
/// the primary of its key's slot, following the cluster when slots move).
#[derive(Clone)]
pub(crate) enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Connection {
    /// Connects to what `url` names, with `timeout` for connecting and for each answer.
    pub(crate) async fn open(url: &str, timeout: Duration) -> redis::RedisResult<Self> {
        if let Some(nodes) = cluster_nodes(url) {
            let client = redis::cluster::ClusterClient::builder(nodes)
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .retries(1)
                .build()?;
            return Ok(Self::Cluster(client.get_async_connection().await?));
        }
        let client = redis::Client::open(url)?;
        let manager = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        Ok(Self::Single(
            client.get_connection_manager_with_config(manager).await?,
        ))
    }
}

/// The nodes of a cluster URL as `redis://` URLs (a user and password before the first host
/// apply to every node), or `None` for a single Redis.
pub(crate) fn cluster_nodes(url: &str) -> Option<Vec<String>> {
    let rest = url.strip_prefix(CLUSTER_SCHEME)?;
    let (auth, hosts) = match rest.rsplit_once('@') {
        Some((auth, hosts)) => (format!("{auth}@"), hosts),
        None => (String::new(), rest),
    };
    Some(
        hosts
            .split(',')
            .map(str::trim)
            .filter(|host| !host.is_empty())
            .map(|host| format!("redis://{auth}{}", host.trim_end_matches('/')))
            .collect(),
    )
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Cluster(conn) => conn.get_db(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::cluster_nodes;

    #[test]
    fn a_cluster_url_names_its_nodes() {
        assert_eq!(cluster_nodes("redis://127.0.0.1:6379/0"), None);
        assert_eq!(
            cluster_nodes("redis+cluster://10.0.0.1:7000, 10.0.0.2:7001/").unwrap(),
            ["redis://10.0.0.1:7000", "redis://10.0.0.2:7001"]
        );
        assert_eq!(
            cluster_nodes("redis+cluster://:s3cret@a:7000,b:7001").unwrap(),
            ["redis://:s3cret@a:7000", "redis://:s3cret@b:7001"]
        );
    }
}
