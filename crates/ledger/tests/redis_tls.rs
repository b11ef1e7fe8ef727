//! The Redis ledger over TLS (`rediss://`), against the local TLS listener of
//! scripts/tls-listeners (mutual TLS, certificates from a throwaway CA): the given CA is the
//! only trust, the client certificate is presented, and a server from another CA is refused
//! with an error naming the certificate, never a grant.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use common::*;
use laissez_ledger::{LedgerError, RedisLedger, RedisOptions, UseLedger};
use laissez_test_support::{CuttableProxy, TlsListeners, tls_listeners};

fn mutual(tls: &TlsListeners, ca: &std::path::Path) -> RedisOptions {
    let mut options = RedisOptions::default();
    options.tls.ca = Some(ca.to_owned());
    options.tls.client_cert = Some(tls.client_cert.clone());
    options.tls.client_key = Some(tls.client_key.clone());
    options
}

#[tokio::test]
async fn rediss_with_the_ca_and_a_client_certificate_spends_uses() {
    let tls = tls_listeners();
    let ledger = RedisLedger::connect_with(&tls.rediss_url, mutual(&tls, &tls.ca))
        .await
        .unwrap();
    let cti = fresh_cti();
    let (n, lease, _) = granted(ledger.begin(&req(&cti, "m", 1, WRITE)).await.unwrap());
    assert_eq!(n, 1);
    ledger.complete(&cti, "m", &lease).await.unwrap();
    assert_eq!(
        ledger.begin(&req(&cti, "other", 1, WRITE)).await.unwrap(),
        laissez_ledger::Outcome::Exhausted
    );
}

#[tokio::test]
async fn rediss_from_another_ca_is_refused_naming_the_certificate() {
    let tls = tls_listeners();
    // The given CA replaces every other trust, the system's included.
    let err = RedisLedger::connect_with(&tls.rediss_url, mutual(&tls, &tls.other_ca))
        .await
        .unwrap_err();
    // Not transient: retrying cannot help until the certificates change.
    assert!(matches!(err, LedgerError::Config(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(
            "the TLS handshake with Redis failed: invalid peer certificate: UnknownIssuer"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn rediss_to_a_host_the_certificate_does_not_name_is_refused() {
    let tls = tls_listeners();
    let port = tls
        .rediss_url
        .trim_end_matches('/')
        .rsplit_once(':')
        .map(|(_, port)| port.to_owned())
        .unwrap();
    let upstream = format!("127.0.0.1:{port}");
    // The same listener through a TCP proxy: on 127.0.0.1, which the certificate names, it
    // works; on 127.0.0.2, which it does not, it is refused. The name is always checked.
    let named = CuttableProxy::start_on("127.0.0.1", upstream.clone()).await;
    let url = format!("rediss://127.0.0.1:{}/", named.port());
    let ledger = RedisLedger::connect_with(&url, mutual(&tls, &tls.ca))
        .await
        .unwrap();
    ledger.ping().await.unwrap();
    let unnamed = CuttableProxy::start_on("127.0.0.2", upstream).await;
    let url = format!("rediss://127.0.0.2:{}/", unnamed.port());
    let err = RedisLedger::connect_with(&url, mutual(&tls, &tls.ca))
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::Config(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("invalid peer certificate: certificate not valid for name \"127.0.0.2\""),
        "{err}"
    );
}

#[tokio::test]
async fn rediss_without_a_client_certificate_is_refused() {
    let tls = tls_listeners();
    let mut options = RedisOptions::default();
    options.tls.ca = Some(tls.ca.clone());
    let err = RedisLedger::connect_with(&tls.rediss_url, options)
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::Config(_)), "{err:?}");
    assert!(err.to_string().contains("CertificateRequired"), "{err}");
}

#[tokio::test]
async fn tls_options_need_a_rediss_url_and_a_key_with_the_certificate() {
    let tls = tls_listeners();
    let plain = RedisLedger::connect_with(&redis_url(), mutual(&tls, &tls.ca))
        .await
        .unwrap_err();
    assert!(matches!(plain, LedgerError::Config(_)), "{plain:?}");
    assert!(plain.to_string().contains("rediss://"), "{plain}");
    let mut half = mutual(&tls, &tls.ca);
    half.tls.client_key = None;
    let half = RedisLedger::connect_with(&tls.rediss_url, half)
        .await
        .unwrap_err();
    assert!(matches!(half, LedgerError::Config(_)), "{half:?}");
    let mut missing = mutual(&tls, &tls.ca);
    missing.tls.ca = Some("/nonexistent/ca.pem".into());
    let missing = RedisLedger::connect_with(&tls.rediss_url, missing)
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("/nonexistent/ca.pem"),
        "{missing}"
    );
}

/// A Redis Cluster over TLS (`rediss+cluster://`): the same certificates serve every node the
/// client learns of, and another CA is refused at the first node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_cluster_spends_uses_on_every_master_and_refuses_another_ca() {
    let tls = tls_listeners();
    let url = laissez_test_support::redis_tls_cluster_url();
    let ledger = RedisLedger::connect_with(&url, mutual(&tls, &tls.ca))
        .await
        .unwrap();
    assert!(ledger.is_cluster());
    // Enough ctis that, by the odds, every master holds some (16384 slots in three ranges).
    for _ in 0..30 {
        let cti = fresh_cti();
        let (_, lease, _) = granted(ledger.begin(&req(&cti, "m", 1, WRITE)).await.unwrap());
        ledger.complete(&cti, "m", &lease).await.unwrap();
        assert_eq!(
            ledger.begin(&req(&cti, "m", 1, WRITE)).await.unwrap(),
            laissez_ledger::Outcome::Replayed
        );
    }
    let err = RedisLedger::connect_with(&url, mutual(&tls, &tls.other_ca))
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::Config(_)), "{err:?}");
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}
