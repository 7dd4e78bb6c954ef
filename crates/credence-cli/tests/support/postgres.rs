//! Speaks SQL to a test's PostgreSQL database: to look at what the nodes stored, and to tamper with it.

#![allow(dead_code)]

/// Runs one statement on the database at `url`: for a `SELECT`, the first column of its one
/// row (a count); otherwise the rows it changed.
pub fn sql(url: &str, statement: &str) -> i64 {
    let (url, statement) = (url.to_string(), statement.to_string());
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(connection);
                if statement.trim_start().starts_with("SELECT") {
                    return client
                        .query_one(&statement, &[])
                        .await
                        .unwrap()
                        .get::<_, i64>(0);
                }
                client.execute(&statement, &[]).await.unwrap() as i64
            })
    })
    .join()
    .unwrap()
}
