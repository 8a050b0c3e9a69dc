//! Inventory: 50 customers order at once; each order reserves its lines concurrently, in a
//! `TaskGroup` inside the order's transaction, and stock must never go negative.
//!
//! ```text
//! cargo run -p inventory
//! ```
//!
//! Written as an application would write it: `#[transactional]` fns, an error type of the
//! application's own with `From<transactional::Error>`, and a `TaskGroup<(), ShopError>`.
//! Each reservation reads a product's stock and writes it back after an `if`: a
//! read-then-write that loses updates (and sells stock it does not have) when two sibling
//! savepoints interleave on one connection. Here the savepoints are taken in turn, so it is
//! correct as written. At the end the program checks its invariant on the committed data and
//! exits non-zero if it does not hold.
//!
//! Where a child's slow I/O goes matters. A savepoint holds its parent's turn for its whole
//! life, so while one child's savepoint is open its siblings' savepoints wait: I/O awaited
//! *inside* a nested `#[transactional]` call is sequential across the siblings. I/O awaited
//! in the child *before* the nested call (or in the parent) runs in parallel — see
//! `place_order`. An outermost SQLite transaction also holds the database's one writer for
//! its whole life, so I/O that needs no transaction at all is better done before it begins.

use std::fmt;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use transactional::{transactional, Database, TaskGroup};

/// Products on sale, and the stock each starts with.
const PRODUCTS: i64 = 5;
const INITIAL_STOCK: i64 = 20;
/// Customers ordering at the same time, each in a task of its own.
const ORDERS: usize = 50;
/// How long the (simulated) pricing service takes to answer.
const QUOTE_LATENCY: Duration = Duration::from_millis(2);

/// Why placing an order failed: the application's own error type.
#[derive(Debug)]
enum ShopError {
    /// Not enough stock for one line: the whole order is refused.
    OutOfStock {
        product: i64,
        wanted: i64,
        left: i64,
    },
    UnknownProduct(i64),
    /// The pricing service failed.
    Pricing(String),
    /// The database failed.
    Db(transactional::Error),
}

/// What lets `?` turn the library's errors into ours in the bodies below, and what
/// `#[transactional]` uses for its own failures (beginning, committing, a busy database) in
/// a fn that returns `Result<_, ShopError>`.
impl From<transactional::Error> for ShopError {
    fn from(err: transactional::Error) -> Self {
        ShopError::Db(err)
    }
}

impl fmt::Display for ShopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShopError::OutOfStock {
                product,
                wanted,
                left,
            } => write!(f, "product {product}: {wanted} wanted, {left} left"),
            ShopError::UnknownProduct(id) => write!(f, "product {id} does not exist"),
            ShopError::Pricing(why) => write!(f, "pricing service: {why}"),
            ShopError::Db(err) => write!(f, "database: {err}"),
        }
    }
}

impl std::error::Error for ShopError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ShopError::Db(err) => Some(err),
            _ => None,
        }
    }
}

/// The price of one unit, from a pricing service over the network. A blocking call on
/// tokio's blocking pool stands in for it: like a real remote call it takes a while, and
/// many can be in flight at once.
async fn quote(product: i64) -> Result<i64, ShopError> {
    tokio::task::spawn_blocking(move || {
        std::thread::sleep(QUOTE_LATENCY);
        100 + 25 * product
    })
    .await
    .map_err(|err| ShopError::Pricing(err.to_string()))
}

/// Reserves `quantity` of `product` for `order`: a savepoint inside the order's transaction.
/// Out of stock, it fails and its savepoint rolls back (and so will the whole order, since
/// `place_order` returns the error).
#[transactional]
async fn reserve(
    order: i64,
    product: i64,
    quantity: i64,
    unit_price: i64,
) -> Result<(), ShopError> {
    let tx = transactional::current()?;
    let left: i64 = tx
        .query_opt("SELECT stock FROM product WHERE id = ?1", (product,))
        .await?
        .ok_or(ShopError::UnknownProduct(product))?
        .get(0)?;
    if left < quantity {
        return Err(ShopError::OutOfStock {
            product,
            wanted: quantity,
            left,
        });
    }
    // Written back as a value read above, on purpose: this is only correct because no
    // sibling's statements can run between the SELECT and this UPDATE (this savepoint holds
    // the order's turn until it ends).
    tx.execute(
        "UPDATE product SET stock = ?2 WHERE id = ?1",
        (product, left - quantity),
    )
    .await?;
    tx.execute(
        "INSERT INTO order_line(order_id, product_id, quantity, unit_price) VALUES (?1, ?2, ?3, ?4)",
        (order, product, quantity, unit_price),
    )
    .await?;
    Ok(())
}

/// One customer's order: one outermost transaction, its lines reserved concurrently. Every
/// line is reserved or none is: the first failing line cancels the others, and the order's
/// transaction rolls back with everything its lines wrote.
#[transactional(db = db)]
async fn place_order(
    db: &Database,
    customer: i64,
    lines: Vec<(i64, i64)>,
) -> Result<i64, ShopError> {
    let order: i64 = transactional::current()?
        .query_row(
            "INSERT INTO orders(customer) VALUES (?1) RETURNING id",
            (customer,),
        )
        .await?
        .get(0)?;
    // The type has to be written out. `TaskGroup::new()` alone takes the error type from
    // the children, and they only produce errors through `?` (a `From` conversion to any
    // type), as does `join_all().await?` below: nothing pins `E`, and the default
    // `E = transactional::Error` applies only where the type is written, not to a call.
    // Without it: "error[E0283]: type annotations needed for `TaskGroup<(), _>`".
    let mut tg: TaskGroup<(), ShopError> = TaskGroup::new();
    for (product, quantity) in lines {
        tg.spawn(async move {
            // The slow call first, before `reserve` opens its savepoint: the quotes of all
            // the lines are in flight at once. Awaited inside `reserve` instead, each would
            // hold the order's turn while it waits, and the lines would be priced one after
            // another. (Reads the call needs can be made here too, before `reserve`: a
            // statement outside a savepoint holds the order's turn only while it runs.)
            let unit_price = quote(product).await?;
            reserve(order, product, quantity, unit_price).await?;
            Ok(())
        });
    }
    tg.join_all().await?;
    Ok(order)
}

/// Customer `c`'s cart: three lines, the third naming the first line's product again (carts
/// are not deduplicated), so two siblings of one group read and write the same stock row.
fn cart(customer: usize) -> Vec<(i64, i64)> {
    let first = (customer % PRODUCTS as usize) as i64 + 1;
    let second = ((customer * 3 + 1) % PRODUCTS as usize) as i64 + 1;
    let quantity = (customer % 3) as i64 + 1;
    vec![(first, quantity), (second, 1), (first, 1)]
}

#[transactional(db = db)]
async fn create_shop(db: &Database) -> Result<(), ShopError> {
    let tx = transactional::current()?;
    tx.execute_batch(
        "CREATE TABLE product(id INTEGER PRIMARY KEY, stock INTEGER NOT NULL);
         CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER NOT NULL);
         CREATE TABLE order_line(order_id INTEGER NOT NULL REFERENCES orders(id),
                                 product_id INTEGER NOT NULL REFERENCES product(id),
                                 quantity INTEGER NOT NULL, unit_price INTEGER NOT NULL);",
    )
    .await?;
    for id in 1..=PRODUCTS {
        tx.execute(
            "INSERT INTO product(id, stock) VALUES (?1, ?2)",
            (id, INITIAL_STOCK),
        )
        .await?;
    }
    Ok(())
}

/// What the run did.
#[derive(Debug)]
struct Report {
    placed: usize,
    refused: usize,
    stock_left: Vec<i64>,
    elapsed: Duration,
}

/// Runs `orders` concurrent orders and checks the invariant on what was committed; `Err`
/// says which part of it does not hold.
async fn run(orders: usize) -> Result<Report, String> {
    let db = Database::open_in_memory()
        .await
        .map_err(|e| format!("open: {e}"))?;
    create_shop(&db)
        .await
        .map_err(|e| format!("create the shop: {e}"))?;

    let started = Instant::now();
    let customers: Vec<_> = (0..orders)
        .map(|c| {
            let db = db.clone();
            tokio::spawn(async move { place_order(&db, c as i64, cart(c)).await })
        })
        .collect();
    let (mut placed, mut refused) = (Vec::new(), 0);
    for (c, customer) in customers.into_iter().enumerate() {
        match customer.await.map_err(|e| format!("customer {c}: {e}"))? {
            Ok(order) => placed.push((order, c)),
            Err(ShopError::OutOfStock { .. }) => refused += 1,
            Err(err) => return Err(format!("customer {c}: unexpected failure: {err}")),
        }
    }
    let elapsed = started.elapsed();

    let stock_left = check(&db, &placed)
        .await
        .map_err(|e| format!("reading the result: {e}"))??;
    if refused == 0 || placed.is_empty() {
        // Demand is about twice the stock: a run where nothing ran out proves nothing.
        return Err(format!(
            "{} placed and {refused} refused: the scenario should run out of stock",
            placed.len()
        ));
    }
    Ok(Report {
        placed: placed.len(),
        refused,
        stock_left,
        elapsed,
    })
}

/// The invariant, on the committed data: no stock below zero; every product's stock went
/// down by exactly the quantities of the committed order lines; every placed order has all
/// its cart's lines and no refused order left a row. Returns the stock left.
#[transactional(db = db, read_only)]
async fn check(
    db: &Database,
    placed: &[(i64, usize)],
) -> Result<Result<Vec<i64>, String>, ShopError> {
    let tx = transactional::current()?;
    let mut stock_left = Vec::new();
    for row in tx
        .query(
            "SELECT p.id, p.stock, coalesce(sum(l.quantity), 0) FROM product p
             LEFT JOIN order_line l ON l.product_id = p.id GROUP BY p.id ORDER BY p.id",
            (),
        )
        .await?
    {
        let (id, stock, reserved): (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        if stock < 0 {
            return Ok(Err(format!("product {id}: stock is {stock}")));
        }
        if stock + reserved != INITIAL_STOCK {
            return Ok(Err(format!(
                "product {id}: {stock} left and {reserved} in committed order lines, \
                 but it started with {INITIAL_STOCK}"
            )));
        }
        stock_left.push(stock);
    }
    let orders: i64 = tx
        .query_row("SELECT count(*) FROM orders", ())
        .await?
        .get(0)?;
    if orders != placed.len() as i64 {
        return Ok(Err(format!(
            "{orders} orders in the table, {} placed",
            placed.len()
        )));
    }
    for &(order, customer) in placed {
        let lines: i64 = tx
            .query_row(
                "SELECT count(*) FROM order_line WHERE order_id = ?1",
                (order,),
            )
            .await?
            .get(0)?;
        if lines != cart(customer).len() as i64 {
            return Ok(Err(format!(
                "order {order} has {lines} lines, its cart {}",
                cart(customer).len()
            )));
        }
    }
    Ok(Ok(stock_left))
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(ORDERS).await {
        Ok(report) => {
            println!(
                "{ORDERS} concurrent orders of 3 lines each, {PRODUCTS} products of {INITIAL_STOCK} in stock:"
            );
            println!(
                "  {} placed, {} refused (out of stock), in {:.0} ms",
                report.placed,
                report.refused,
                report.elapsed.as_secs_f64() * 1e3
            );
            println!("  stock left per product: {:?}", report.stock_left);
            println!(
                "  invariant holds: no stock below zero, stock + committed lines = {INITIAL_STOCK} \
                 per product, every placed order complete, no refused order left a row"
            );
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("inventory: the invariant does not hold: {why}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example's own run, under `cargo test --workspace`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fifty_concurrent_orders_keep_the_invariant() {
        let report = run(ORDERS).await.unwrap_or_else(|why| panic!("{why}"));
        assert_eq!(report.placed + report.refused, ORDERS);
        assert!(report.stock_left.iter().all(|&s| s >= 0), "{report:?}");
    }
}
