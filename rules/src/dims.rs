//! Dimensions rules group by, and how to read each from an incident event.

use relec_schemas::IncidentEvent;

/// Dimensions a rule may group by or break a group down by.
pub const DIMENSIONS: [&str; 7] = [
    "route",
    "border_section",
    "crossing_point",
    "nationality",
    "category",
    "reporting_country",
    "reporting_agency",
];

/// The event's value of a single-valued dimension; `None` if the event has none (an
/// unset crossing point) or the dimension is multi-valued (nationality).
pub fn value<'a>(event: &'a IncidentEvent, dim: &str) -> Option<&'a str> {
    match dim {
        "route" => Some(&event.route),
        "border_section" => event.border_section.as_deref(),
        "crossing_point" => event.crossing_point.as_deref(),
        "category" => Some(event.category.as_str()),
        "reporting_country" => Some(&event.reporting_country),
        "reporting_agency" => Some(&event.reporting_agency),
        _ => None,
    }
}

/// Every group key `event` belongs to under `group_by`: one for single-valued dimensions,
/// one per nationality when grouping by nationality, none if a dimension is unset.
pub fn keys(event: &IncidentEvent, group_by: &[String]) -> Vec<Vec<(String, String)>> {
    let mut keys: Vec<Vec<(String, String)>> = vec![Vec::with_capacity(group_by.len())];
    for dim in group_by {
        if dim == "nationality" {
            let values = &event.nationalities;
            let mut more = Vec::with_capacity(keys.len() * values.len());
            for key in &keys {
                for n in values {
                    let mut key = key.clone();
                    key.push((dim.clone(), n.nationality.clone()));
                    more.push(key);
                }
            }
            keys = more;
        } else {
            let Some(value) = value(event, dim) else {
                return Vec::new();
            };
            for key in &mut keys {
                key.push((dim.clone(), value.to_owned()));
            }
        }
    }
    keys
}
