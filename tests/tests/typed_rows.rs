//! Rows decoded whole: into tuples by position, into `#[derive(FromRow)]` structs by column
//! name, with clear errors for a wrong column count, a missing column and a wrong type.
//! Conformance: every kind of `KINDS`.

use transactional::{Atomic, Error, FromRow, Row};
use transactional_tests::{TestDb, KINDS};

#[derive(FromRow, Debug, PartialEq)]
struct Account {
    id: i64,
    #[from_row(rename = "owner_name")]
    owner: String,
    balance: Option<i64>,
    // A raw identifier names the column without `r#`.
    r#type: String,
}

#[derive(FromRow, Debug, PartialEq)]
struct IdAndOwner(i64, String);

#[derive(FromRow, Debug, PartialEq)]
struct Wrapped<T> {
    id: i64,
    owner_name: T,
}

const SCHEMA: &str = "CREATE TABLE account(id BIGINT PRIMARY KEY, owner_name TEXT NOT NULL, \
                      balance BIGINT, type TEXT NOT NULL); \
                      INSERT INTO account VALUES (1, 'ada', 100, 'checking'), \
                                                 (2, 'bob', NULL, 'savings')";

async fn setup(t: &TestDb) {
    for statement in SCHEMA.split("; ") {
        t.exec(statement).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_decode_into_tuples_and_structs() {
    for kind in KINDS {
        let t = TestDb::new(kind).await;
        setup(&t).await;
        Atomic::new()
            .db(t.db.clone())
            .run(async {
                let tx = transactional::current()?;
                let accounts: Vec<Account> =
                    tx.query_as("SELECT * FROM account ORDER BY id", ()).await?;
                assert_eq!(
                    accounts,
                    [
                        Account {
                            id: 1,
                            owner: "ada".into(),
                            balance: Some(100),
                            r#type: "checking".into()
                        },
                        Account {
                            id: 2,
                            owner: "bob".into(),
                            balance: None,
                            r#type: "savings".into()
                        },
                    ]
                );
                let pairs: Vec<(String, Option<i64>)> = tx
                    .query_as("SELECT owner_name, balance FROM account ORDER BY id", ())
                    .await?;
                assert_eq!(pairs, [("ada".into(), Some(100)), ("bob".into(), None)]);
                let one: IdAndOwner = tx
                    .query_row_as("SELECT id, owner_name FROM account WHERE id = ?1", (2,))
                    .await?;
                assert_eq!(one, IdAndOwner(2, "bob".into()));
                let generic: Option<Wrapped<String>> = tx
                    .query_opt_as("SELECT id, owner_name FROM account WHERE id = ?1", (1,))
                    .await?;
                assert_eq!(
                    generic,
                    Some(Wrapped {
                        id: 1,
                        owner_name: "ada".to_owned()
                    })
                );
                let none: Option<(i64,)> = tx
                    .query_opt_as("SELECT id FROM account WHERE id = ?1", (99,))
                    .await?;
                assert_eq!(none, None);
                // `Row::decode` and `Row` itself.
                let row = tx
                    .query_row("SELECT id, owner_name FROM account WHERE id = 1", ())
                    .await?;
                assert_eq!(row.decode::<(i64, String)>()?, (1, "ada".to_owned()));
                assert_eq!(Row::from_row(&row)?, row);
                Ok::<_, Error>(())
            })
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_that_does_not_fit_is_a_clear_error() {
    for kind in KINDS {
        let t = TestDb::new(kind).await;
        setup(&t).await;
        let errors = Atomic::new()
            .db(t.db.clone())
            .run(async {
                let tx = transactional::current()?;
                let too_many = tx
                    .query_as::<(i64, String), _>("SELECT id, owner_name, balance FROM account", ())
                    .await
                    .unwrap_err();
                let too_few = tx
                    .query_row_as::<IdAndOwner, _>("SELECT id FROM account WHERE id = 1", ())
                    .await
                    .unwrap_err();
                let missing = tx
                    .query_as::<Account, _>("SELECT id, owner_name, balance FROM account", ())
                    .await
                    .unwrap_err();
                let wrong_type = tx
                    .query_as::<(i64, i64), _>("SELECT id, owner_name FROM account", ())
                    .await
                    .unwrap_err();
                let no_row = tx
                    .query_row_as::<(i64,), _>("SELECT id FROM account WHERE id = 99", ())
                    .await
                    .unwrap_err();
                Ok::<_, Error>([too_many, too_few, missing, wrong_type, no_row])
            })
            .await
            .unwrap();
        let [too_many, too_few, missing, wrong_type, no_row] = errors;
        assert!(
            matches!(
                too_many,
                Error::ColumnCount {
                    expected: 2,
                    found: 3,
                    ..
                }
            ),
            "{kind:?}: {too_many:?}"
        );
        assert!(
            too_many.to_string().contains("id, owner_name, balance"),
            "{too_many}"
        );
        assert!(
            matches!(
                too_few,
                Error::ColumnCount {
                    expected: 2,
                    found: 1,
                    ..
                }
            ),
            "{kind:?}: {too_few:?}"
        );
        assert!(
            matches!(&missing, Error::NoSuchColumn { column, .. } if column.contains("type")),
            "{kind:?}: {missing:?}"
        );
        assert!(
            matches!(&wrong_type, Error::Conversion { column, .. } if column.contains("owner_name")),
            "{kind:?}: {wrong_type:?}"
        );
        assert!(
            matches!(no_row, Error::NoRows { .. }),
            "{kind:?}: {no_row:?}"
        );
        // The transaction was not failed by decoding errors (they are the client's).
        t.assert_healthy().await;
    }
}
