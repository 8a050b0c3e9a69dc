//! `Args` and the values of options.

use quote::quote;

use super::{args, error};
use crate::value::{self, Begin, Isolation, Propagation};

#[test]
fn parses_every_option() {
    let args = args(quote! {
        db = self.db, propagation = "requires_new", begin = "exclusive",
        isolation = "repeatable_read", read_only, retries = 5, timeout = "2s",
        name = "load_user", crate = "::facade::transactional",
    });
    assert!(args.db.is_some());
    assert_eq!(args.propagation.unwrap().value, Propagation::RequiresNew);
    assert_eq!(args.begin.unwrap().value, Begin::Exclusive);
    assert_eq!(args.isolation.unwrap().value, Isolation::RepeatableRead);
    assert!(args.read_only.unwrap().value);
    assert_eq!(args.retries.unwrap().value, 5);
    assert_eq!(args.timeout.unwrap().value, 2_000_000_000);
    assert_eq!(args.name.unwrap().value.value(), "load_user");
    let krate = args.krate.unwrap().value;
    assert_eq!(quote!(#krate).to_string(), ":: facade :: transactional");
}

#[test]
fn empty_and_trailing_comma() {
    assert!(args(quote!()).db.is_none());
    assert!(!args(quote!(read_only = false,)).read_only.unwrap().value);
}

#[test]
fn durations() {
    assert_eq!(value::parse_duration("1500us"), Ok(1_500_000));
    assert_eq!(value::parse_duration("250ms"), Ok(250_000_000));
    assert_eq!(value::parse_duration("1m"), Ok(60_000_000_000));
    assert_eq!(value::parse_duration("1_000ns"), Ok(1_000));
    for bad in [
        "",
        "2",
        "s",
        "2 s",
        "1.5s",
        "2sec",
        "-1s",
        "0s",
        "99999999999h",
    ] {
        assert!(value::parse_duration(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn suggestions() {
    let keys = ["db", "read_only", "retries", "timeout"];
    assert_eq!(
        value::similar("readonly", keys.into_iter()),
        Some("read_only")
    );
    assert_eq!(value::similar("retry", keys.into_iter()), Some("retries"));
    assert_eq!(
        value::similar("max_retries", keys.into_iter()),
        Some("retries")
    );
    assert_eq!(
        value::similar("Read-Only", keys.into_iter()),
        Some("read_only")
    );
    assert_eq!(value::similar("savepoint", keys.into_iter()), None);
    assert_eq!(value::similar("dbname", keys.into_iter()), None);
    assert_eq!(
        value::list(["`a`", "`b`", "`c`"].map(String::from).into_iter()),
        "`a`, `b` or `c`"
    );
}

#[test]
fn collects_independent_errors() {
    let message = error(quote!(
        propagation = "up",
        timeout = "soon",
        name = "a b",
        retries = 0
    ));
    assert_eq!(message.lines().count(), 4, "{message}");
    assert!(message.contains("unknown propagation \"up\""));
}

#[test]
fn reports_duplicates_once_per_repeat() {
    let message = error(quote!(db = a, db = b, read_only, read_only));
    assert!(message.contains("duplicate option `db`"), "{message}");
    assert!(
        message.contains("duplicate option `read_only`"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 2, "{message}");
}

#[test]
fn unknown_options_keep_parsing() {
    let message = error(quote!(readonly, foo = 1 + 2, retries = "3"));
    assert!(message.contains("did you mean `read_only`?"), "{message}");
    assert!(
        message.contains("unknown option `foo`; the options are `db`"),
        "{message}"
    );
    assert!(
        message.contains("`retries` takes a positive integer"),
        "{message}"
    );
}

#[test]
fn a_bare_value_gets_its_option() {
    assert_eq!(error(quote!("join")), "expected `propagation = \"join\"`");
    assert_eq!(
        error(quote!("2s", read_only)),
        "expected `timeout = \"2s\"`"
    );
    assert!(error(quote!("x")).starts_with("expected an option: `db`"));
}

#[test]
fn wrong_value_types_suggest_quotes() {
    assert!(error(quote!(propagation = join)).contains("`propagation = \"join\"`"));
    assert!(error(quote!(timeout = 2s)).contains("`timeout = \"2s\"`"));
    assert!(error(quote!(name = load)).contains("`name = \"load\"`"));
    assert!(error(quote!(isolation = foo)).contains("`isolation = \"read_committed\"`"));
}

#[test]
fn other_frameworks_propagations_get_a_suggestion_by_meaning() {
    let required = error(quote!(propagation = "required"));
    assert!(required.contains("`propagation = \"join\"`"), "{required}");
    assert!(!required.contains("requires_new"), "{required}");
    let spring = error(quote!(propagation = "PROPAGATION_REQUIRED"));
    assert!(spring.contains("`propagation = \"join\"`"), "{spring}");
    assert!(error(quote!(propagation = "never")).contains("no equivalent"));
    assert!(error(quote!(propagation = "atomic")).contains("\"nested\""));
    let upper = error(quote!(propagation = "REQUIRES_NEW"));
    assert!(upper.contains("write \"requires_new\""), "{upper}");
}
