//! `amqps://` against the broker's real TLS listener (scripts/tls-listeners: mutual TLS, a
//! throwaway CA): a full consume with the middleware, the publisher over TLS too; a broker
//! certificate from another CA refused before anything is sent; a host name the certificate
//! does not name refused; a client without a certificate refused by the broker; files that cannot be used refused when loaded, naming
//! the file and never quoting it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use laissez_amqp::lapin::Connection;
use laissez_amqp::{
    AmqpError, ConsumerConfig, Disposition, HandlerError, Message, Middleware, Publisher,
    TlsConfig, TlsError, ToolCall, Topology,
};
use laissez_ledger::MemoryLedger;
use laissez_test_support::{TlsListeners, tls_listeners};
use laissez_verify::ActionClass;

fn mutual(tls: &TlsListeners) -> TlsConfig {
    TlsConfig::default()
        .with_ca_file(&tls.ca)
        .unwrap()
        .with_client_certificate(&tls.client_cert, &tls.client_key)
        .unwrap()
}

async fn connect_tls(tls: &TlsListeners, config: &TlsConfig) -> Result<Connection, AmqpError> {
    // The refusals must come at once, not after lapin's retries: bounded, with room for a
    // loaded machine.
    tokio::time::timeout(
        PATIENCE,
        laissez_amqp::connect_with_tls(&tls.amqps_url, "laissez-amqp tls tests", config),
    )
    .await
    .expect("connect_with_tls neither connected nor failed: a TLS failure was retried")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_consume_over_mutual_tls() {
    let tls = tls_listeners();
    let config = mutual(&tls);
    let connection = connect_tls(&tls, &config).await.unwrap();
    let topology = Topology::new(unique("tls"));
    let setup = connection.create_channel().await.unwrap();
    topology.declare(&setup).await.unwrap();
    let publisher = Publisher::new(connection.create_channel().await.unwrap())
        .await
        .unwrap();

    let keys = Keys::new();
    let aud = topology.queue.clone();
    let envelope = keys.envelope(&aud, "crm.*", "read", 5);
    for id in ["tls-1", "tls-2"] {
        let call = ToolCall::new(
            envelope.as_bytes(),
            "crm.ticket.read",
            ActionClass::Read,
            id,
        );
        publisher
            .publish("", &topology.queue, &call, id.as_bytes())
            .await
            .unwrap();
    }

    let ran: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let seen = ran.clone();
    let handler = move |m: Message| {
        let seen = seen.clone();
        async move {
            assert_eq!(m.body, m.authorized.message_id.as_bytes());
            let a = &m.authorized;
            seen.lock()
                .unwrap()
                .push((a.message_id.clone(), a.use_number));
            Ok::<_, HandlerError>(Disposition::Ack)
        }
    };
    let tools = catalogue(&[("crm.ticket.read", ActionClass::Read)]);
    let consumer = ConsumerConfig::new(&topology.queue, &aud, keys.trusted.clone(), tools)
        .idle_timeout(Some(Duration::from_secs(2)));
    let channel = connection.create_channel().await.unwrap();
    let stats = tokio::time::timeout(
        PATIENCE,
        Middleware::new(consumer, Arc::new(MemoryLedger::new()), handler)
            .run(&channel, std::future::pending()),
    )
    .await
    .expect("the worker did not go idle")
    .unwrap();

    let ran = ran.lock().unwrap().clone();
    let mut ids: Vec<&str> = ran.iter().map(|(id, _)| id.as_str()).collect();
    let mut uses: Vec<u64> = ran.iter().map(|(_, n)| *n).collect();
    ids.sort_unstable();
    uses.sort_unstable();
    assert_eq!(
        (ids, uses),
        (vec!["tls-1", "tls-2"], vec![1, 2]),
        "each ran once"
    );
    assert_eq!((stats.handled, stats.denied), (2, 0), "{stats:?}");
    // Acked: nothing is left in the queue nor dead-lettered.
    let q = Queue {
        topology,
        channel: setup,
        publisher,
    };
    assert_eq!(q.counts(&q.topology.queue.clone()).await.0, 0);
    assert!(q.take_dead_letters().await.is_empty());
    q.delete().await;
    let _ = connection.close(200, "done".into()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_certificate_from_another_ca_is_refused() {
    let tls = tls_listeners();
    let config = TlsConfig::default()
        .with_ca_file(&tls.other_ca)
        .unwrap()
        .with_client_certificate(&tls.client_cert, &tls.client_key)
        .unwrap();
    let error = connect_tls(&tls, &config).await.unwrap_err();
    let AmqpError::Tls(TlsError::BrokerCertificate {
        unknown_issuer: true,
        ..
    }) = &error
    else {
        panic!("not refused as an unknown issuer: {error:?}");
    };
    assert_eq!(
        error.to_string(),
        "TLS: the broker's certificate is not signed by a trusted CA"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_the_certificate_does_not_name_is_refused() {
    let tls = tls_listeners();
    // The same listener through another loopback address: the certificate names `localhost`
    // and 127.0.0.1 only, and the name is always checked.
    let mut listeners = tls.clone();
    listeners.amqps_url = tls.amqps_url.replace("@localhost:", "@127.0.0.2:");
    assert_ne!(listeners.amqps_url, tls.amqps_url);
    let error = connect_tls(&listeners, &mutual(&tls)).await.unwrap_err();
    let AmqpError::Tls(TlsError::BrokerCertificate {
        unknown_issuer: false,
        ..
    }) = &error
    else {
        panic!("not refused for its name: {error:?}");
    };
    assert_eq!(
        error.to_string(),
        "TLS: the broker's certificate does not name the host \"127.0.0.2\""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_a_certificate_is_refused_by_the_broker() {
    let tls = tls_listeners();
    let config = TlsConfig::default().with_ca_file(&tls.ca).unwrap();
    let error = connect_tls(&tls, &config).await.unwrap_err();
    let AmqpError::Tls(TlsError::ClientRefused {
        certificate_sent: false,
        ..
    }) = &error
    else {
        panic!("not refused as a client without a certificate: {error:?}");
    };
    assert!(
        error
            .to_string()
            .contains("the broker requires a client certificate and none was given"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_options_with_a_plain_url_are_an_error() {
    let tls = tls_listeners();
    let error = laissez_amqp::connect_with_tls(&amqp_url(), "plain", &mutual(&tls))
        .await
        .unwrap_err();
    assert!(
        matches!(error, AmqpError::Tls(TlsError::PlainUrl)),
        "{error:?}"
    );
}

#[test]
fn unusable_files_are_named_and_never_quoted() {
    let tls = tls_listeners();
    let key_pem = std::fs::read_to_string(&tls.client_key).unwrap();
    let key_lines: Vec<&str> = key_pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    assert!(!key_lines.is_empty());

    // A loaded configuration shows paths only.
    let debug = format!("{:?}", mutual(&tls));
    assert!(
        debug.contains("client.key") && debug.contains("ca.pem"),
        "{debug}"
    );
    for line in &key_lines {
        assert!(!debug.contains(line), "Debug shows the key: {debug}");
    }

    // A certificate given as the key: no private key in it, and the error quotes nothing.
    let error = TlsConfig::default()
        .with_client_certificate(&tls.client_cert, &tls.client_cert)
        .unwrap_err();
    assert!(matches!(error, TlsError::BadKey { .. }), "{error:?}");
    assert!(error.to_string().contains("client.pem"), "{error}");
    // The key given as the certificate (and as a CA): no certificate in it.
    let error = TlsConfig::default()
        .with_client_certificate(&tls.client_key, &tls.client_key)
        .unwrap_err();
    let error_text = format!("{error} {error:?}");
    assert!(
        matches!(error, TlsError::NoCertificate { .. }),
        "{error_text}"
    );
    let error = TlsConfig::default()
        .with_ca_file(&tls.client_key)
        .unwrap_err();
    let error_text = format!("{error_text} {error} {error:?}");
    for line in &key_lines {
        assert!(
            !error_text.contains(line),
            "an error quotes the key: {error_text}"
        );
    }
    // A file that is not there.
    let error = TlsConfig::default()
        .with_ca_file(tls.ca.with_file_name("absent.pem"))
        .unwrap_err();
    assert!(matches!(error, TlsError::Read { .. }), "{error:?}");
    assert!(error.to_string().contains("absent.pem"), "{error}");
}
