//! The quickstart's output: every decision the README promises, with the right outcome.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[test]
fn the_quickstart_shows_every_decision() {
    let mut out = Vec::new();
    laissez_examples::quickstart(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let decision = |label: &str| -> String {
        let line = text
            .lines()
            .find(|l| l.contains(&format!(". {label} ")))
            .unwrap_or_else(|| panic!("no line for {label:?} in:\n{text}"));
        line.split("-> ").nth(1).unwrap().trim().to_owned()
    };
    assert_eq!(decision("allowed"), "ALLOWED  use 1 of 2");
    assert_eq!(decision("tool not granted"), "DENIED   tool_not_granted");
    assert_eq!(
        decision("destructive not granted"),
        "DENIED   class_not_granted"
    );
    // The worker's catalogue gives the class: calling the destructive tool a write does not
    // make it one, and a tool the worker does not run is refused whatever the grant says.
    assert_eq!(
        decision("relabelled as write"),
        "DENIED   class_not_granted"
    );
    assert_eq!(decision("unknown tool"), "DENIED   unknown_tool");
    assert_eq!(decision("wrong queue"), "DENIED   wrong_audience");
    assert_eq!(decision("tampered"), "DENIED   bad_signature");
    assert_eq!(decision("expired"), "DENIED   expired");
    assert_eq!(decision("second use"), "ALLOWED  use 2 of 2");
    assert_eq!(decision("uses exhausted"), "DENIED   uses_exhausted");
    assert_eq!(decision("replayed"), "DENIED   replayed");
    // Holder binding: only the agent's own invocation makes a call of the bound envelope.
    assert_eq!(decision("the agent's call"), "ALLOWED  use 1 of 2");
    assert_eq!(
        decision("copied envelope"),
        "DENIED   invocation_required (holder_bound)"
    );
    assert_eq!(
        decision("copied invocation"),
        "DENIED   invocation_mismatch (message_id)"
    );
    assert_eq!(
        decision("altered body"),
        "DENIED   invocation_mismatch (body)"
    );
    // Human approval: 2 of 3 people, each once, over exactly this call; then it ran.
    assert_eq!(
        decision("not approved"),
        "DENIED   approval_required (0 of 2)"
    );
    assert_eq!(
        decision("one approval"),
        "DENIED   approval_required (1 of 2)"
    );
    assert_eq!(
        decision("the same person twice"),
        "DENIED   approval_required (1 of 2)"
    );
    assert_eq!(decision("two people approved"), "ALLOWED  use 1 of 2");
    assert_eq!(decision("approved, sent again"), "DENIED   replayed");
    // Revocation: the session's call runs before the record, and is refused after it.
    assert_eq!(decision("before the record"), "ALLOWED  use 1 of 2");
    assert_eq!(decision("session revoked"), "DENIED   revoked");
    // Delegation: a narrower child runs, what it does not grant does not, and its uses are
    // its parent's too; a wider child is never signed.
    assert!(text.contains("refused: not attenuated (max_uses)"));
    assert_eq!(decision("sub-agent reads"), "ALLOWED  use 1 of 2");
    assert_eq!(decision("sub-agent writes"), "DENIED   tool_not_granted");
    assert_eq!(decision("the planner's own call"), "ALLOWED  use 2 of 2");
    assert_eq!(decision("parent's uses spent"), "DENIED   uses_exhausted");
    // Arguments and budgets: a refund within its cap runs, one over it is refused naming the
    // member, a small one needs no person, a large one waits for one, the budget stops the
    // third refund that would pass it, and a sub-agent is never handed a higher cap.
    assert_eq!(
        decision("refund within its cap"),
        "ALLOWED  use 1 of 5, amount 200"
    );
    assert_eq!(
        decision("refund over its cap"),
        "DENIED   arguments_not_granted (amount)"
    );
    assert_eq!(
        decision("small refund, no person"),
        "ALLOWED  use 2 of 5, amount 240"
    );
    assert_eq!(
        decision("large refund waits"),
        "DENIED   approval_required (0 of 1)"
    );
    assert_eq!(
        decision("approved, past budget"),
        "DENIED   budget_exhausted (billing.refund:amount)"
    );
    assert_eq!(
        decision("the rest of the budget"),
        "ALLOWED  use 3 of 5, amount 250"
    );
    assert!(text.contains(
        "refunds up to 1000 are refused: not attenuated (args): the child's constraint on amount"
    ));
    // A queue worker on any client: the delivery as `ToolCall` published it, through a
    // `Gatekeeper` on the same ledger; acked once its handler ran, dead-lettered when it comes
    // again; and the headers `consume --http` hands a handler for it.
    assert_eq!(
        decision("delivered to a worker"),
        "ALLOWED  use 1 of 2, then ack"
    );
    assert_eq!(
        decision("redelivered after ack"),
        "DENIED   replayed, dead-letter"
    );
    let http = text
        .lines()
        .find(|l| l.starts_with("http      "))
        .unwrap_or_else(|| panic!("no http line in:\n{text}"));
    for header in [
        "laissez-agent: spiffe://acme.example/agent/support-bot;",
        "laissez-tool: crm.ticket.read;",
        "laissez-class: read;",
        "laissez-obo: user:42;",
        "laissez-session: task-33;",
        "laissez-use: 1;",
        "laissez-message-id: msg-33;",
        "laissez-chain: [\"spiffe://acme.example/agent/support-bot\"];",
    ] {
        assert!(http.contains(header), "{header:?} missing from {http:?}");
    }
    assert!(http.ends_with("laissez-approved-by: []"), "{http:?}");
    let cti = http
        .split_once("laissez-cti: ")
        .and_then(|(_, rest)| rest.split_once(';'))
        .map(|(cti, _)| cti)
        .unwrap_or_else(|| panic!("no laissez-cti in {http:?}"));
    assert!(
        cti.len() == 32 && cti.bytes().all(|b| b.is_ascii_hexdigit()),
        "{cti:?}"
    );
    assert_eq!(text.lines().filter(|l| l.contains("-> ")).count(), 34);
    assert!(text.starts_with("key       generated"));
    assert!(text.contains("tool catalogue: crm.ticket.read = read"));
    assert!(text.contains("crm.ticket.delete = destructive"));
}
