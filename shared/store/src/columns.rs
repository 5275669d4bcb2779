//! Column-oriented buffers: an entity's typed columns collected into one PostgreSQL array per column,
//! so a whole batch travels as a handful of array parameters and is unpacked server-side with `UNNEST`.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::Postgres;
use tds_core::ColumnSink;

/// One column's values for every row of a batch.
pub(crate) enum ColumnData {
    Text(Vec<Option<String>>),
    Decimal(Vec<Option<Decimal>>),
    Integer(Vec<Option<i64>>),
    Boolean(Vec<Option<bool>>),
    Timestamp(Vec<Option<DateTime<Utc>>>),
    Date(Vec<Option<NaiveDate>>),
}

impl ColumnData {
    /// The PostgreSQL array type the column is sent as.
    pub(crate) fn array_type(&self) -> &'static str {
        match self {
            ColumnData::Text(_) => "text[]",
            ColumnData::Decimal(_) => "numeric[]",
            ColumnData::Integer(_) => "int8[]",
            ColumnData::Boolean(_) => "bool[]",
            ColumnData::Timestamp(_) => "timestamptz[]",
            ColumnData::Date(_) => "date[]",
        }
    }

    /// Binds the column as one array parameter.
    pub(crate) fn bind<'q>(
        self,
        query: Query<'q, Postgres, PgArguments>,
    ) -> Query<'q, Postgres, PgArguments> {
        match self {
            ColumnData::Text(v) => query.bind(v),
            ColumnData::Decimal(v) => query.bind(v),
            ColumnData::Integer(v) => query.bind(v),
            ColumnData::Boolean(v) => query.bind(v),
            ColumnData::Timestamp(v) => query.bind(v),
            ColumnData::Date(v) => query.bind(v),
        }
    }
}

/// Collects the typed columns of a batch, row by row, checking that every row writes the same
/// columns in the same order with the same types.
#[derive(Default)]
pub(crate) struct ColumnBuffers {
    pub(crate) columns: Vec<(&'static str, ColumnData)>,
    rows: usize,
    position: usize,
    error: Option<String>,
}

impl ColumnBuffers {
    /// Starts the next row.
    pub(crate) fn begin_row(&mut self) {
        self.position = 0;
    }

    /// Finishes a row; records an error if it wrote fewer columns than the first row.
    pub(crate) fn end_row(&mut self) {
        if self.rows > 0 && self.position != self.columns.len() && self.error.is_none() {
            self.error = Some(format!(
                "row {} wrote {} columns, the first row wrote {}",
                self.rows,
                self.position,
                self.columns.len()
            ));
        }
        self.rows += 1;
    }

    /// The first inconsistency found, if any.
    pub(crate) fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// The column for the next value of the current row: created on the first row, checked by name
    /// on later rows. `None` (with the error recorded) when the layout differs from the first row's.
    fn slot(&mut self, name: &'static str, empty: ColumnData) -> Option<&mut ColumnData> {
        let kind = std::mem::discriminant(&empty);
        let position = self.position;
        self.position += 1;
        if self.rows == 0 {
            if self.columns.iter().any(|(n, _)| *n == name) {
                self.fail(format!("column {name} written twice"));
                return None;
            }
            self.columns.push((name, empty));
        }
        match self.columns.get(position) {
            Some((n, data)) if *n == name && std::mem::discriminant(data) == kind => {}
            _ => {
                let row = self.rows;
                self.fail(format!(
                    "row {row} wrote column {name} at position {position} out of order or with another type"
                ));
                return None;
            }
        }
        self.columns.get_mut(position).map(|(_, data)| data)
    }

    fn fail(&mut self, problem: String) {
        if self.error.is_none() {
            self.error = Some(problem);
        }
    }
}

/// Implements a sink method: find the slot, push the value into the matching variant.
macro_rules! sink_method {
    ($method:ident, $variant:ident, $ty:ty, $convert:expr) => {
        fn $method(&mut self, name: &'static str, value: Option<$ty>) {
            if let Some(ColumnData::$variant(values)) =
                self.slot(name, ColumnData::$variant(Vec::new()))
            {
                values.push(value.map($convert));
            }
        }
    };
}

impl ColumnSink for ColumnBuffers {
    sink_method!(text, Text, &str, str::to_string);
    sink_method!(decimal, Decimal, Decimal, std::convert::identity);
    sink_method!(integer, Integer, i64, std::convert::identity);
    sink_method!(boolean, Boolean, bool, std::convert::identity);
    sink_method!(timestamp, Timestamp, DateTime<Utc>, std::convert::identity);
    sink_method!(date, Date, NaiveDate, std::convert::identity);
}
