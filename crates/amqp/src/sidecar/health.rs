//! Readiness of a running sidecar: what `laissez consume --metrics` answers at `/healthz`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use laissez_ledger::AnyLedger;
use lapin::ConnectionStatus;

use crate::revocations::FollowerStatus;

/// How long the readiness probe waits for the ledger's answer.
pub const LEDGER_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The readiness of one [`run`](super::run): pass a clone in
/// [`SidecarConfig::health`](super::SidecarConfig::health) and ask [`Health::check`] from
/// anywhere. Ready when the sidecar is connected to the broker, its revocation follower holds
/// every record of the stream (caught up, and following it live), and the ledger answers a
/// probe now.
#[derive(Clone, Default)]
pub struct Health(Arc<Parts>);

#[derive(Default)]
struct Parts {
    broker: OnceLock<ConnectionStatus>,
    revocations: OnceLock<FollowerStatus>,
    ledger: OnceLock<Arc<AnyLedger>>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field(
                "connected",
                &self.0.broker.get().map(ConnectionStatus::connected),
            )
            .field("revocations", &self.0.revocations.get())
            .field("ledger_opened", &self.0.ledger.get().is_some())
            .finish()
    }
}

impl Health {
    /// Not ready: nothing is connected yet.
    pub fn new() -> Self {
        Self::default()
    }

    pub(crate) fn set_ledger(&self, ledger: Arc<AnyLedger>) {
        let _ = self.0.ledger.set(ledger);
    }

    pub(crate) fn set_broker(&self, status: ConnectionStatus) {
        let _ = self.0.broker.set(status);
    }

    pub(crate) fn set_revocations(&self, status: FollowerStatus) {
        let _ = self.0.revocations.set(status);
    }

    /// `Ok` when ready; else a short text saying what is not (no URL, no secret). Probes the
    /// ledger each time, waiting at most [`LEDGER_PROBE_TIMEOUT`].
    pub async fn check(&self) -> Result<(), String> {
        match self.0.broker.get() {
            None => return Err("not connected to the AMQP broker yet".into()),
            Some(status) if !status.connected() => {
                return Err("not connected to the AMQP broker".into());
            }
            Some(_) => {}
        }
        match self.0.revocations.get().map(FollowerStatus::not_ready) {
            None => return Err("revocation stream not caught up yet".into()),
            Some(Some(why)) => return Err(why),
            Some(None) => {}
        }
        let Some(ledger) = self.0.ledger.get() else {
            return Err("ledger not opened yet".into());
        };
        match tokio::time::timeout(LEDGER_PROBE_TIMEOUT, ledger.ping()).await {
            Ok(Ok(())) => Ok(()),
            // The code only: an error's detail may name a host.
            Ok(Err(error)) => Err(format!("ledger does not answer ({})", error.code())),
            Err(_) => Err(format!(
                "ledger did not answer within {} s",
                LEDGER_PROBE_TIMEOUT.as_secs()
            )),
        }
    }
}
