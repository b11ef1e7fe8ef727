//! Reading and writing the tool-call headers.

use laissez_verify::owned::OwnedCatalogue;
use laissez_verify::wire::MAX_INVOCATION_TEXT_LEN;

use super::*;

fn props(envelope: AMQPValue, tool: &str, class: &str, id: Option<&str>) -> BasicProperties {
    let mut h = FieldTable::default();
    h.insert(HEADER_ENVELOPE.into(), envelope);
    h.insert(HEADER_TOOL.into(), AMQPValue::LongString(tool.into()));
    h.insert(HEADER_CLASS.into(), AMQPValue::LongString(class.into()));
    let p = BasicProperties::default().with_headers(h);
    match id {
        Some(id) => p.with_message_id(id.into()),
        None => p,
    }
}

#[test]
fn raw_text_wrapped_text_and_bytes_forms_read_alike() {
    let raw = vec![0xd2, 0x84, 0x43, 0xa1, 0x01, 0x27, 0x04];
    let text = laissez_sign::encode_text(&raw);
    // A line-wrapped copy, as a mail client or a terminal would paste it.
    let wrapped = format!("{}\n{}\r\n{}", &text[..3], &text[3..6], &text[6..]);
    for value in [
        AMQPValue::ByteArray(raw.clone().into()),
        AMQPValue::LongString(raw.clone().into()),
        AMQPValue::LongString(format!(" {text}\n").into()),
        AMQPValue::LongString(wrapped.into()),
    ] {
        let p = props(value, "crm.read", "read", Some("m1"));
        let h = read_headers(&p).unwrap();
        assert_eq!(&*h.envelope, &raw[..]);
        assert_eq!(h.tool, "crm.read");
        assert_eq!(h.class_header, Some(ActionClass::Read));
        assert_eq!(h.message_id, "m1");
    }
}

#[test]
fn written_properties_read_back() {
    let raw = [0xd2, 1, 2, 3];
    for enc in [EnvelopeEncoding::Bytes, EnvelopeEncoding::Text] {
        for class in [None, Some(ActionClass::Destructive)] {
            let p = tool_call_properties(&raw, "a.b", class, "id-9", None, enc);
            let h = read_headers(&p).unwrap();
            assert_eq!(&*h.envelope, &raw[..]);
            assert_eq!(h.class_header, class);
            assert_eq!(p.delivery_mode(), &Some(2));
        }
    }
}

#[test]
fn the_class_is_the_catalogues_and_a_contradicting_header_is_refused() {
    let catalogue = OwnedCatalogue::new()
        .with("crm.ticket.delete", ActionClass::Destructive)
        .unwrap();
    let raw = [0xd2, 0];
    let read = |tool: &str, class: Option<ActionClass>| {
        let p = tool_call_properties(&raw, tool, class, "m", None, EnvelopeEncoding::Bytes);
        read_headers(&p).unwrap().class_in(&catalogue)
    };
    let destructive = Ok(Some(ActionClass::Destructive));
    assert_eq!(read("crm.ticket.delete", None), destructive);
    assert_eq!(
        read("crm.ticket.delete", Some(ActionClass::Destructive)),
        destructive
    );
    // The relabelling attack: the publisher calls a destructive tool "write".
    assert_eq!(
        read("crm.ticket.delete", Some(ActionClass::Write)),
        Err(HeaderError::ClassDisagrees)
    );
    // An unlisted tool has no class (the verifier says unknown_tool), whatever the header.
    assert_eq!(read("crm.read", Some(ActionClass::Read)), Ok(None));
    assert_eq!(read("crm.read", None), Ok(None));
}

#[test]
fn each_missing_or_garbled_part_is_named() {
    let ok = AMQPValue::ByteArray(vec![0xd2, 0].into());
    let cases = [
        (
            props(ok.clone(), "t", "read", None),
            HeaderError::MissingMessageId,
        ),
        (
            props(ok.clone(), "t", "read", Some("")),
            HeaderError::MissingMessageId,
        ),
        (
            props(ok.clone(), "Bad Tool", "read", Some("m")),
            HeaderError::BadTool,
        ),
        (
            props(ok.clone(), "crm.*", "read", Some("m")),
            HeaderError::BadTool,
        ),
        (
            props(ok.clone(), "t", "delete", Some("m")),
            HeaderError::BadClass,
        ),
        (
            props(
                AMQPValue::LongString("not base64!".into()),
                "t",
                "read",
                Some("m"),
            ),
            HeaderError::BadEnvelope,
        ),
        (
            props(AMQPValue::LongInt(3), "t", "read", Some("m")),
            HeaderError::BadEnvelope,
        ),
    ];
    for (p, want) in cases {
        assert_eq!(read_headers(&p), Err(want));
        assert_eq!(want.reason(), Reason::Malformed);
    }
    let bare = BasicProperties::default().with_message_id("m".into());
    assert_eq!(read_headers(&bare), Err(HeaderError::MissingEnvelope));
}

fn with_invocation(value: AMQPValue) -> BasicProperties {
    let p = tool_call_properties(&[0xd2, 0], "t", None, "m", None, EnvelopeEncoding::Bytes);
    let mut headers = p.headers().clone().unwrap();
    headers.insert(HEADER_INVOCATION.into(), value);
    p.with_headers(headers)
}

fn invocation_of(p: &BasicProperties) -> Option<Result<Vec<u8>, InvocationHeaderError>> {
    read_headers(p)
        .unwrap()
        .invocation
        .map(|i| i.map(|b| b.into_owned()))
}

#[test]
fn the_invocation_is_read_as_bytes_or_text_and_written_as_the_envelope_is() {
    let raw = vec![0xd2, 0x84, 0x43, 0xa1, 0x01, 0x27, 0x04];
    let text = laissez_sign::encode_text(&raw);
    let wrapped = format!(" {}\r\n{}\n", &text[..4], &text[4..]);
    for value in [
        AMQPValue::ByteArray(raw.clone().into()),
        AMQPValue::LongString(raw.clone().into()),
        AMQPValue::LongString(text.clone().into()),
        AMQPValue::ShortString(text.as_str().into()),
        AMQPValue::LongString(wrapped.into()),
    ] {
        assert_eq!(
            invocation_of(&with_invocation(value)),
            Some(Ok(raw.clone()))
        );
    }
    for enc in [EnvelopeEncoding::Bytes, EnvelopeEncoding::Text] {
        let p = tool_call_properties(&[0xd2, 1], "a.b", None, "id", Some(&raw), enc);
        assert_eq!(invocation_of(&p), Some(Ok(raw.clone())));
        let p = tool_call_properties(&[0xd2, 1], "a.b", None, "id", None, enc);
        assert_eq!(invocation_of(&p), None, "no invocation, no header");
    }
}

#[test]
fn an_unreadable_invocation_header_is_named_never_a_panic_nor_a_malformed_message() {
    let too_long = "A".repeat(MAX_INVOCATION_TEXT_LEN + 1);
    // Within the text bound, but more than 1024 bytes once decoded.
    let decodes_too_long = "A".repeat(MAX_INVOCATION_TEXT_LEN);
    let cases = [
        (AMQPValue::LongInt(7), InvocationHeaderError::WrongType),
        (AMQPValue::Boolean(true), InvocationHeaderError::WrongType),
        (
            AMQPValue::FieldArray(Vec::new().into()),
            InvocationHeaderError::WrongType,
        ),
        (
            AMQPValue::FieldTable(FieldTable::default()),
            InvocationHeaderError::WrongType,
        ),
        (
            AMQPValue::LongString(too_long.into()),
            InvocationHeaderError::TooLong,
        ),
        (
            AMQPValue::LongString(decodes_too_long.into()),
            InvocationHeaderError::TooLong,
        ),
        (
            AMQPValue::LongString("not base64!".into()),
            InvocationHeaderError::NotText,
        ),
        (
            AMQPValue::LongString(" \n ".into()),
            InvocationHeaderError::NotText,
        ),
        (
            AMQPValue::ByteArray(vec![0xff, 0xfe].into()),
            InvocationHeaderError::NotText,
        ),
    ];
    let mut details = Vec::new();
    for (value, want) in cases {
        // The message itself reads: the envelope, tool and id are fine.
        assert_eq!(invocation_of(&with_invocation(value)), Some(Err(want)));
        let code = want.unreadable().code();
        if !details.contains(&code) {
            details.push(code);
        }
    }
    assert_eq!(details.len(), 3, "one detail per error");
    // Raw bytes are not size-checked here: the invocation decoder refuses them.
    let big = [0xd2u8; MAX_INVOCATION_LEN + 1];
    let p = with_invocation(AMQPValue::ByteArray(big.to_vec().into()));
    assert_eq!(invocation_of(&p), Some(Ok(big.to_vec())));
}

#[test]
fn the_chain_header_is_read_root_first_before_the_leaf_and_a_bad_one_is_malformed() {
    let leaf = vec![0xd2, 0x84, 0x43, 0xa1, 0x01, 0x27, 0x04];
    let (root, middle) = (vec![0xd2, 0x01], vec![0xd2, 0x02]);
    let with_chain = |value: Option<AMQPValue>| {
        let p = props(
            AMQPValue::ByteArray(leaf.clone().into()),
            "crm.read",
            "read",
            Some("m-1"),
        );
        let mut h = p.headers().clone().unwrap();
        if let Some(value) = value {
            h.insert(crate::HEADER_CHAIN.into(), value);
        }
        p.with_headers(h)
    };
    let p = with_chain(None);
    let read = read_headers(&p).unwrap();
    assert!(read.chain.is_empty());
    assert_eq!(read.links(), [&leaf[..]]);
    let value =
        crate::headers::chain_header::chain_value(&[&root, &middle], EnvelopeEncoding::Text);
    let p = with_chain(Some(value));
    let read = read_headers(&p).unwrap();
    assert_eq!(read.links(), [&root[..], &middle[..], &leaf[..]]);
    let p = with_chain(Some(AMQPValue::LongString("x".into())));
    let error = read_headers(&p).unwrap_err();
    assert_eq!(error, HeaderError::ChainNotArray);
    assert_eq!(error.detail(), "chain_header_not_an_array");
}

#[test]
fn the_limits_named_in_header_errors_read_as_before() {
    // The texts are built from the wire table: they must read as they always did.
    for (error, text) in [
        (
            HeaderError::TooManyApprovals,
            "the laissez-approvals header has more than 16 approvals",
        ),
        (
            HeaderError::ApprovalTooLong,
            "an entry of the laissez-approvals header is over 1024 bytes",
        ),
        (
            HeaderError::ChainTooLong,
            "the laissez-chain header has more than 3 envelopes (a chain is at most 4 long)",
        ),
        (
            HeaderError::ChainEntryTooLong,
            "an entry of the laissez-chain header is over 4096 bytes",
        ),
    ] {
        assert_eq!(error.to_string(), text);
    }
}
