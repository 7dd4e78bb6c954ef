//! A statement's `WHERE` clause built from a query's optional filters, numbering its parameters as it goes.

use tokio_postgres::types::ToSql;

/// `SELECT … WHERE true` and one `AND column op $n` per filter given, with the parameters.
pub(crate) struct Filters {
    sql: String,
    values: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Filters {
    /// Starts from `select`, which ends in `WHERE true`.
    pub(crate) fn new(select: String) -> Filters {
        Filters {
            sql: select,
            values: Vec::new(),
        }
    }

    /// Adds `AND {clause} $n` with `value` as parameter n; `clause` ends in its operator
    /// (`status =`, `id >`).
    pub(crate) fn and(&mut self, clause: &str, value: impl ToSql + Sync + Send + 'static) {
        self.values.push(Box::new(value));
        self.sql
            .push_str(&format!(" AND {clause} ${}", self.values.len()));
    }

    /// [`Filters::and`] when the filter is given.
    pub(crate) fn and_if<T: ToSql + Sync + Send + Clone + 'static>(
        &mut self,
        clause: &str,
        value: Option<&T>,
    ) {
        if let Some(value) = value {
            self.and(clause, value.clone());
        }
    }

    /// Adds text with no parameter (`AND state <> 'decided'`, `ORDER BY …`).
    pub(crate) fn push(&mut self, text: &str) {
        self.sql.push_str(text);
    }

    /// The number the next parameter would take.
    pub(crate) fn next_parameter(&self) -> usize {
        self.values.len() + 1
    }

    /// The statement.
    pub(crate) fn sql(&self) -> &str {
        &self.sql
    }

    /// The parameters, in order.
    pub(crate) fn parameters(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.values
            .iter()
            .map(|v| &**v as &(dyn ToSql + Sync))
            .collect()
    }
}
