//! The report of cancelled callbacks (contract `gms-callback.md` §9, ours):
//! `POST {root}/admin/callback/reportcancelled` with
//! `{"callback_reason":"CANCELLED_BY_ADMIN","exported_properties":["_customer_number","first_name"]}`
//! answers `text/csv`: a header `_id,_service_name,_desired_time,_callback_reason,<properties…>`
//! and one line per COMPLETED record with that reason, by desired time, at most
//! [`MAX_RECORDS`], read from the store's reason index (no scan of all callbacks).
//!
//! The file is safe to open in a spreadsheet: every field is quoted as RFC 4180 says (a comma,
//! quote or line break inside a value stays inside its field), and a value that a spreadsheet
//! would run as a formula (one starting with `=`, `+`, `-`, `@`, a tab or a carriage return)
//! is prefixed with `'` (OWASP's advice), so it shows as text.

use std::collections::HashMap;

use futures::{FutureExt, StreamExt};
use serde::Deserialize;
use uuid::Uuid;

use super::admin::{authorize, json_body, MAX_RECORDS};
use super::bulk::DEFAULT_REASON;
use super::{all_services, errors};
use crate::callback::record::{CallbackRecord, State};
use crate::callback::time::format_utc;
use crate::error::ApiError;
use crate::gateway::{ApiRequest, Gateway};
use crate::reply::Reply;
use crate::store::callback::{Field, Operand, Query, Term};
use crate::value::Value;

/// The report's content type.
pub const CSV: &str = "text/csv; charset=utf-8";
/// The columns every report starts with.
const COLUMNS: [&str; 4] = ["_id", "_service_name", "_desired_time", "_callback_reason"];
/// The most `exported_properties` a report takes.
const MAX_PROPERTIES: usize = 100;

/// The body of a report request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportBody {
    callback_reason: Option<String>,
    #[serde(default)]
    exported_properties: Vec<String>,
}

/// `POST {root}/admin/callback/reportcancelled`.
pub async fn report(gw: &Gateway, req: ApiRequest) -> Result<Reply, ApiError> {
    authorize(gw, &req, false)?;
    let body: ReportBody = json_body(
        &req,
        r#"{"callback_reason":"…","exported_properties":["…"]}"#,
    )?;
    let reason = match body.callback_reason.as_deref().map(str::trim) {
        None => DEFAULT_REASON,
        Some("") => {
            return Err(errors::invalid_parameter(
                "callback_reason must not be empty",
            ))
        }
        Some(r) => r,
    };
    let properties = body.exported_properties;
    if properties.len() > MAX_PROPERTIES {
        return Err(errors::invalid_parameter(format!(
            "at most {MAX_PROPERTIES} exported_properties"
        )));
    }
    if properties.iter().any(|p| p.is_empty()) {
        return Err(errors::invalid_parameter(
            "an exported property has an empty name",
        ));
    }
    let services = all_services(gw);
    let mut query = Query::new(
        vec![Term::is(Field::Reason, reason)],
        Operand::And,
        MAX_RECORDS,
    );
    query.states = vec![State::Completed];
    let found = gw.store.callbacks().query(&services, &query).await?;
    let data = user_data(gw, &found.records, &properties).await?;
    let mut csv = writer();
    let header = COLUMNS
        .iter()
        .copied()
        .chain(properties.iter().map(String::as_str));
    write_row(&mut csv, header)?;
    for r in &found.records {
        let fixed = [
            r.id.hyphenated().to_string(),
            r.service.clone(),
            format_utc(r.desired),
            r.reason.clone().unwrap_or_default(),
        ];
        let extra = properties.iter().map(|p| {
            own_value(r, p)
                .map(str::to_string)
                .or_else(|| data.get(&r.id).and_then(|d| d.get(p).cloned()))
                .unwrap_or_default()
        });
        let row: Vec<String> = fixed.into_iter().chain(extra).collect();
        write_row(&mut csv, row.iter().map(String::as_str))?;
    }
    let bytes = csv
        .into_inner()
        .map_err(|e| ApiError::Internal(format!("cannot finish a CSV report: {e}")))?;
    Ok(Reply::new(200, CSV, bytes).with_header(
        "Content-Disposition",
        "attachment; filename=\"cancelled-callbacks.csv\"",
    ))
}

/// A CSV writer as RFC 4180 has it: every field quoted, lines ended by CRLF.
fn writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .quote_style(csv::QuoteStyle::Always)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new())
}

/// Writes one line, each field [`defused`].
fn write_row<'a>(
    csv: &mut csv::Writer<Vec<u8>>,
    fields: impl Iterator<Item = &'a str>,
) -> Result<(), ApiError> {
    csv.write_record(fields.map(|f| defused(f).into_owned()))
        .map_err(|e| ApiError::Internal(format!("cannot write a CSV report: {e}")))
}

/// A value a spreadsheet shows as text: one it would read as a formula gets a leading `'`.
pub fn defused(value: &str) -> std::borrow::Cow<'_, str> {
    match value.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{value}").into(),
        _ => value.into(),
    }
}

/// A property the record itself holds: its own fields, lookup keys and kept properties.
fn own_value<'a>(r: &'a CallbackRecord, key: &str) -> Option<&'a str> {
    match key {
        "_callback_state" => Some(r.state.name()),
        "_callback_reason" => r.reason.as_deref(),
        "_customer_number" => Some(&r.customer_number),
        "_ors_session_id" => Some(r.ors.as_ref().map_or("", |o| o.session.as_str())),
        k => r.lookup_value(k).or_else(|| r.prop(k)),
    }
}

/// The user data values of `properties` that the records do not hold themselves, per record:
/// read only when some record lacks some property, a bounded number of reads at once.
async fn user_data(
    gw: &Gateway,
    records: &[CallbackRecord],
    properties: &[String],
) -> Result<HashMap<Uuid, HashMap<String, String>>, ApiError> {
    // Owned ids: a closure over borrowed records makes the handler's future not `Send`.
    let wanted: Vec<(Uuid, Uuid)> = records
        .iter()
        .filter(|r| properties.iter().any(|p| own_value(r, p).is_none()))
        .map(|r| (r.id, r.data_id))
        .collect();
    let reads = futures::stream::iter(wanted)
        .map(|(id, data_id)| data_of(gw, id, data_id, properties).boxed())
        .buffered(gw.config.callback.submit_concurrency)
        .collect::<Vec<_>>()
        .await;
    reads.into_iter().collect()
}

/// The values of `properties` in the user data `data_id` of callback `id`.
async fn data_of(
    gw: &Gateway,
    id: Uuid,
    data_id: Uuid,
    properties: &[String],
) -> Result<(Uuid, HashMap<String, String>), ApiError> {
    let data = gw.store.get_data(&data_id.hyphenated().to_string()).await?;
    let values = data
        .map(|d| d.fields)
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| properties.contains(k))
        .map(|(k, v)| match v {
            Value::Text(t) => (k, t),
            // A file is not a cell: its name stands for it.
            Value::File(f) => (k, f.filename),
        })
        .collect();
    Ok((id, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_become_text_and_other_values_stay() {
        for (v, want) in [
            ("=1+1", "'=1+1"),
            ("+33123", "'+33123"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("plain", "plain"),
            ("", ""),
            ("a=b", "a=b"),
        ] {
            assert_eq!(defused(v), want);
        }
    }

    #[test]
    fn fields_with_commas_quotes_and_newlines_stay_in_their_cells() {
        let mut csv = writer();
        write_row(
            &mut csv,
            ["a,b", "say \"hi\"", "two\nlines", "=cmd"].into_iter(),
        )
        .unwrap();
        let text = String::from_utf8(csv.into_inner().unwrap()).unwrap();
        assert_eq!(
            text,
            "\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"'=cmd\"\r\n"
        );
        let mut back = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes());
        let row = back.records().next().unwrap().unwrap();
        assert_eq!(row.len(), 4);
        assert_eq!(&row[2], "two\nlines");
    }
}
