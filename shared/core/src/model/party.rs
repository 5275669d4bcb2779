//! Contacts (customers and vendors) and transaction documents (invoices, sales orders, bills,
//! customer payments, credit notes, vendor payments, purchase orders).

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::fields::{within_record, Fields};
use crate::row::{ColumnSink, Entity};
use crate::{EntityKind, ParseError};

/// A customer or vendor.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    /// `contact_id`.
    pub contact_id: String,
    /// `contact_name`.
    pub contact_name: Option<String>,
    /// `company_name`.
    pub company_name: Option<String>,
    /// `contact_type`: `customer` or `vendor`.
    pub contact_type: Option<String>,
    /// `customer_sub_type`: `business` or `individual`.
    pub customer_sub_type: Option<String>,
    /// `status`: `active` or `inactive`.
    pub status: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `currency_code`.
    pub currency_code: Option<String>,
    /// Country: `billing_address.country`, else `shipping_address.country`, else a top-level `country`.
    pub country: Option<String>,
    /// `credit_limit` (detail only).
    pub credit_limit: Option<Decimal>,
    /// `outstanding_receivable_amount`.
    pub outstanding_receivable: Option<Decimal>,
    /// `outstanding_payable_amount`.
    pub outstanding_payable: Option<Decimal>,
    /// `created_time`.
    pub created_time: Option<DateTime<Utc>>,
    /// `last_modified_time`.
    pub last_modified_time: Option<DateTime<Utc>>,
    /// The record as Zoho sent it.
    pub record: Value,
}

impl Contact {
    /// Parses a contact from a list page, a detail GET or a webhook payload.
    pub fn parse(record: Value) -> Result<Contact, ParseError> {
        let f = Fields::new(EntityKind::Contact, &record)?;
        let contact_id = f.id("contact_id")?;
        let parsed = within_record(&contact_id, || {
            let mut country = None;
            for address in ["billing_address", "shipping_address"] {
                if country.is_none() {
                    if let Some(a) = f.opt_object(address)? {
                        country = a.opt_string("country")?;
                    }
                }
            }
            if country.is_none() {
                country = f.opt_string("country")?;
            }
            Ok(Contact {
                contact_id: contact_id.clone(),
                contact_name: f.opt_string("contact_name")?,
                company_name: f.opt_string("company_name")?,
                contact_type: f.opt_string("contact_type")?,
                customer_sub_type: f.opt_string("customer_sub_type")?,
                status: f.opt_string("status")?,
                email: f.opt_string("email")?,
                currency_code: f.opt_string("currency_code")?,
                country,
                credit_limit: f.opt_decimal("credit_limit")?,
                outstanding_receivable: f.opt_decimal("outstanding_receivable_amount")?,
                outstanding_payable: f.opt_decimal("outstanding_payable_amount")?,
                created_time: f.opt_timestamp("created_time")?,
                last_modified_time: f.opt_timestamp("last_modified_time")?,
                record: Value::Null,
            })
        })?;
        Ok(Contact { record, ..parsed })
    }
}

impl Entity for Contact {
    fn kind(&self) -> EntityKind {
        EntityKind::Contact
    }
    fn zoho_id(&self) -> String {
        self.contact_id.clone()
    }
    fn last_modified_time(&self) -> Option<DateTime<Utc>> {
        self.last_modified_time
    }
    fn record(&self) -> &Value {
        &self.record
    }
    fn write_columns(&self, c: &mut dyn ColumnSink) {
        c.text("contact_name", self.contact_name.as_deref());
        c.text("company_name", self.company_name.as_deref());
        c.text("contact_type", self.contact_type.as_deref());
        c.text("customer_sub_type", self.customer_sub_type.as_deref());
        c.text("status", self.status.as_deref());
        c.text("email", self.email.as_deref());
        c.text("currency_code", self.currency_code.as_deref());
        c.text("country", self.country.as_deref());
        c.decimal("credit_limit", self.credit_limit);
        c.decimal("outstanding_receivable", self.outstanding_receivable);
        c.decimal("outstanding_payable", self.outstanding_payable);
        c.timestamp("created_time", self.created_time);
    }
}

/// Where a transaction kind keeps its common fields in Zoho's records.
struct DocumentFields {
    id: &'static str,
    number: &'static str,
    contact_id: &'static str,
    contact_name: &'static str,
    total: &'static str,
    balance: Option<&'static str>,
    due_date: Option<&'static str>,
}

fn document_fields(kind: EntityKind) -> Option<DocumentFields> {
    let (id, number, party, total, balance, due_date) = match kind {
        EntityKind::Invoice => (
            "invoice_id",
            "invoice_number",
            "customer",
            "total",
            Some("balance"),
            Some("due_date"),
        ),
        EntityKind::SalesOrder => (
            "salesorder_id",
            "salesorder_number",
            "customer",
            "total",
            None,
            Some("shipment_date"),
        ),
        EntityKind::Bill => (
            "bill_id",
            "bill_number",
            "vendor",
            "total",
            Some("balance"),
            Some("due_date"),
        ),
        EntityKind::CustomerPayment => (
            "payment_id",
            "payment_number",
            "customer",
            "amount",
            Some("unused_amount"),
            None,
        ),
        EntityKind::CreditNote => (
            "creditnote_id",
            "creditnote_number",
            "customer",
            "total",
            Some("balance"),
            None,
        ),
        EntityKind::VendorPayment => (
            "payment_id",
            "payment_number",
            "vendor",
            "amount",
            Some("balance"),
            None,
        ),
        EntityKind::PurchaseOrder => (
            "purchaseorder_id",
            "purchaseorder_number",
            "vendor",
            "total",
            None,
            Some("delivery_date"),
        ),
        _ => return None,
    };
    let (contact_id, contact_name) = match party {
        "customer" => ("customer_id", "customer_name"),
        _ => ("vendor_id", "vendor_name"),
    };
    Some(DocumentFields {
        id,
        number,
        contact_id,
        contact_name,
        total,
        balance,
        due_date,
    })
}

/// A transaction document of one of the seven transaction kinds, with the fields every kind shares
/// under the names that kind uses (`invoice_number`, `vendor_id`, `amount`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Which transaction kind.
    pub kind: EntityKind,
    /// Zoho id (`invoice_id`, `payment_id`, ...).
    pub id: String,
    /// Document number (`invoice_number`, `payment_number`, ...).
    pub number: Option<String>,
    /// `status` (payments have none).
    pub status: Option<String>,
    /// `date`.
    pub date: Option<NaiveDate>,
    /// `due_date`, `shipment_date` or `delivery_date`, as the kind has.
    pub due_date: Option<NaiveDate>,
    /// `customer_id` or `vendor_id`.
    pub contact_id: Option<String>,
    /// `customer_name` or `vendor_name`.
    pub contact_name: Option<String>,
    /// `currency_code`.
    pub currency_code: Option<String>,
    /// `total` (or a payment's `amount`).
    pub total: Option<Decimal>,
    /// `balance` (or a customer payment's `unused_amount`).
    pub balance: Option<Decimal>,
    /// `reference_number`.
    pub reference_number: Option<String>,
    /// Number of `line_items`; `None` when the record has none (list pages and webhooks omit them).
    pub line_item_count: Option<i64>,
    /// `created_time`.
    pub created_time: Option<DateTime<Utc>>,
    /// `last_modified_time`.
    pub last_modified_time: Option<DateTime<Utc>>,
    /// The record as Zoho sent it.
    pub record: Value,
}

impl Document {
    /// Parses a record of transaction kind `kind`; other kinds are refused with an error.
    pub fn parse(kind: EntityKind, record: Value) -> Result<Document, ParseError> {
        let parsed = Document::read(kind, &record)?;
        Ok(Document { record, ..parsed })
    }

    /// [`Document::parse`] without taking the record: the fields only (`record` is `Null`), for a
    /// verdict on a record that is written later (no copy of it is made).
    pub fn read(kind: EntityKind, record: &Value) -> Result<Document, ParseError> {
        let spec = document_fields(kind).ok_or_else(|| ParseError {
            kind,
            id: None,
            field: "(kind)".into(),
            problem: "is not a transaction kind".into(),
        })?;
        let f = Fields::new(kind, record)?;
        let id = f.id(spec.id)?;
        within_record(&id, || {
            let due_date = match spec.due_date {
                Some(name) => f.opt_date(name)?,
                None => None,
            };
            let balance = match spec.balance {
                Some(name) => f.opt_decimal(name)?,
                None => None,
            };
            let line_item_count = f
                .opt_array("line_items")?
                .map(|items| i64::try_from(items.len()).unwrap_or(i64::MAX));
            Ok(Document {
                kind,
                id: id.clone(),
                number: f.opt_string(spec.number)?,
                status: f.opt_string("status")?,
                date: f.opt_date("date")?,
                due_date,
                contact_id: f.opt_id(spec.contact_id)?,
                contact_name: f.opt_string(spec.contact_name)?,
                currency_code: f.opt_string("currency_code")?,
                total: f.opt_decimal(spec.total)?,
                balance,
                reference_number: f.opt_string("reference_number")?,
                line_item_count,
                created_time: f.opt_timestamp("created_time")?,
                last_modified_time: f.opt_timestamp("last_modified_time")?,
                record: Value::Null,
            })
        })
    }

    /// Whether this record lacks the line items only a detail GET returns (it needs a re-fetch to be complete).
    pub fn needs_detail(&self) -> bool {
        self.kind != EntityKind::CustomerPayment
            && self.kind != EntityKind::VendorPayment
            && self.line_item_count.is_none()
    }
}

impl Entity for Document {
    fn kind(&self) -> EntityKind {
        self.kind
    }
    fn zoho_id(&self) -> String {
        self.id.clone()
    }
    fn last_modified_time(&self) -> Option<DateTime<Utc>> {
        self.last_modified_time
    }
    fn record(&self) -> &Value {
        &self.record
    }
    fn write_columns(&self, c: &mut dyn ColumnSink) {
        c.text("number", self.number.as_deref());
        c.text("status", self.status.as_deref());
        c.date("date", self.date);
        c.date("due_date", self.due_date);
        c.text("contact_id", self.contact_id.as_deref());
        c.text("contact_name", self.contact_name.as_deref());
        c.text("currency_code", self.currency_code.as_deref());
        c.decimal("total", self.total);
        c.decimal("balance", self.balance);
        c.text("reference_number", self.reference_number.as_deref());
        c.integer("line_item_count", self.line_item_count);
        c.timestamp("created_time", self.created_time);
    }
}
