//! Marketing definitions (goals, page events, outcomes, campaigns) and their resolution by GUID or
//! name, as the JSS clients send either.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{ids::Guid, Error, EventError};

/// The default definitions shipped with jss-tracker (its own GUIDs, the styleguide's names).
pub const DEFAULT_DEFINITIONS_TOML: &str = include_str!("../definitions/default.toml");

/// The four kinds of definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DefinitionKind {
    /// A page event (`eventId`).
    PageEvent,
    /// A goal (`goalId`).
    Goal,
    /// An outcome (`outcomeId`).
    Outcome,
    /// A campaign (`campaignId`, `sc_camp`).
    Campaign,
}

impl DefinitionKind {
    /// The word used in messages: "goal 'Regster' is not defined".
    pub fn label(self) -> &'static str {
        match self {
            Self::PageEvent => "page event",
            Self::Goal => "goal",
            Self::Outcome => "outcome",
            Self::Campaign => "campaign",
        }
    }
}

/// One definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    /// Its GUID.
    pub id: Guid,
    /// Its name, unique (case-insensitively) within its kind.
    pub name: String,
    /// Engagement-value points.
    #[serde(default)]
    pub points: i64,
    /// Page events only: whether it marks a failure.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_failure: bool,
    /// Outcomes only: whether a monetary value applies (shown to people; see `refuse_money`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub monetary_value_applicable: bool,
    /// Outcomes only: refuse (400) an outcome of this definition that carries a monetary value.
    /// Off by default: the JSS samples send money on any outcome.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refuse_money: bool,
    /// Outcomes only: accept a negative monetary value (a refund, say); refused otherwise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub negative_money_allowed: bool,
}

/// The definitions file: one array of tables per kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefinitionsFile {
    /// Page events.
    #[serde(default)]
    pub page_events: Vec<Definition>,
    /// Goals.
    #[serde(default)]
    pub goals: Vec<Definition>,
    /// Outcomes.
    #[serde(default)]
    pub outcomes: Vec<Definition>,
    /// Campaigns.
    #[serde(default)]
    pub campaigns: Vec<Definition>,
}

/// A definition found for an id, with the kind it was found as.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    /// The kind it belongs to (an `eventId` may name a goal, as in Sitecore).
    pub kind: DefinitionKind,
    /// The definition.
    pub definition: &'a Definition,
}

#[derive(Debug, Default)]
struct Catalog {
    items: Vec<Definition>,
    by_id: HashMap<Guid, usize>,
    by_name: HashMap<String, usize>,
}

impl Catalog {
    fn build(kind: DefinitionKind, items: Vec<Definition>) -> Result<Self, Error> {
        let mut catalog = Self::default();
        for (i, def) in items.iter().enumerate() {
            if def.name.trim().is_empty() {
                return Err(Error::Definitions(format!(
                    "a {} has an empty name",
                    kind.label()
                )));
            }
            if catalog.by_id.insert(def.id, i).is_some() {
                return Err(Error::Definitions(format!(
                    "{} id {} is defined twice",
                    kind.label(),
                    def.id
                )));
            }
            if catalog.by_name.insert(def.name.to_lowercase(), i).is_some() {
                return Err(Error::Definitions(format!(
                    "{} name '{}' is defined twice",
                    kind.label(),
                    def.name
                )));
            }
        }
        catalog.items = items;
        Ok(catalog)
    }

    fn find(&self, raw: &str) -> Option<&Definition> {
        let index = match Guid::parse(raw) {
            Some(guid) => self.by_id.get(&guid),
            None => self.by_name.get(&raw.trim().to_lowercase()),
        };
        index.map(|&i| &self.items[i])
    }
}

/// All definitions, indexed for resolution.
#[derive(Debug, Default)]
pub struct Definitions {
    page_events: Catalog,
    goals: Catalog,
    outcomes: Catalog,
    campaigns: Catalog,
}

impl Definitions {
    /// Indexes a definitions file; fails on duplicate ids or names within a kind.
    pub fn from_file(file: DefinitionsFile) -> Result<Self, Error> {
        Ok(Self {
            page_events: Catalog::build(DefinitionKind::PageEvent, file.page_events)?,
            goals: Catalog::build(DefinitionKind::Goal, file.goals)?,
            outcomes: Catalog::build(DefinitionKind::Outcome, file.outcomes)?,
            campaigns: Catalog::build(DefinitionKind::Campaign, file.campaigns)?,
        })
    }

    /// Parses and indexes a definitions file's TOML text.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let file: DefinitionsFile =
            toml::from_str(text).map_err(|e| Error::Definitions(e.to_string()))?;
        Self::from_file(file)
    }

    /// The shipped default set.
    pub fn defaults() -> Self {
        // The default file is part of the crate and covered by a test, so this cannot fail.
        Self::from_toml(DEFAULT_DEFINITIONS_TOML).unwrap_or_default()
    }

    fn catalog(&self, kind: DefinitionKind) -> &Catalog {
        match kind {
            DefinitionKind::PageEvent => &self.page_events,
            DefinitionKind::Goal => &self.goals,
            DefinitionKind::Outcome => &self.outcomes,
            DefinitionKind::Campaign => &self.campaigns,
        }
    }

    /// The definitions of one kind, in file order.
    pub fn list(&self, kind: DefinitionKind) -> &[Definition] {
        &self.catalog(kind).items
    }

    /// Resolves an id sent as `kind`'s field. An `eventId` that names a goal resolves to the goal,
    /// because in Sitecore goals are page events and JSS apps send them either way.
    pub fn resolve(&self, kind: DefinitionKind, raw: &str) -> Result<Resolved<'_>, EventError> {
        if let Some(definition) = self.catalog(kind).find(raw) {
            return Ok(Resolved { kind, definition });
        }
        if kind == DefinitionKind::PageEvent {
            if let Some(definition) = self.goals.find(raw) {
                return Ok(Resolved {
                    kind: DefinitionKind::Goal,
                    definition,
                });
            }
        }
        if raw.trim().is_empty() {
            return Err(EventError::Invalid(format!("{} id is empty", kind.label())));
        }
        Err(EventError::UnknownDefinition(format!(
            "{} '{}' is not defined",
            kind.label(),
            raw
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_hold_the_styleguide_names() {
        let defs = Definitions::from_toml(DEFAULT_DEFINITIONS_TOML).expect("defaults parse");
        for (kind, name) in [
            (DefinitionKind::PageEvent, "Download"),
            (DefinitionKind::Goal, "Instant Demo"),
            (DefinitionKind::Goal, "Register"),
            (DefinitionKind::Outcome, "Opportunity"),
            (DefinitionKind::Outcome, "Marketing Lead"),
        ] {
            assert!(defs.resolve(kind, name).is_ok(), "{name}");
        }
        assert!(!defs.list(DefinitionKind::Campaign).is_empty());
    }

    #[test]
    fn resolves_by_any_guid_spelling_or_case_insensitive_name() {
        let defs = Definitions::defaults();
        let goal = defs
            .resolve(DefinitionKind::Goal, "instant demo")
            .expect("by name");
        let id = goal.definition.id.0;
        for raw in [
            id.hyphenated().to_string(),
            id.simple().to_string().to_uppercase(),
            format!("{{{}}}", id.hyphenated().to_string().to_uppercase()),
        ] {
            let again = defs.resolve(DefinitionKind::Goal, &raw).expect("by guid");
            assert_eq!(again.definition.name, "Instant Demo");
        }
    }

    #[test]
    fn unknown_names_and_guids_are_errors_that_name_the_kind() {
        let defs = Definitions::defaults();
        assert_eq!(
            defs.resolve(DefinitionKind::Goal, "Regster")
                .map(|r| r.kind),
            Err(EventError::UnknownDefinition(
                "goal 'Regster' is not defined".into()
            ))
        );
        let unknown_guid = "{00000000-0000-0000-0000-000000000001}";
        assert!(matches!(
            defs.resolve(DefinitionKind::Outcome, unknown_guid),
            Err(EventError::UnknownDefinition(_))
        ));
    }

    #[test]
    fn event_id_may_name_a_goal() {
        let defs = Definitions::defaults();
        let resolved = defs
            .resolve(DefinitionKind::PageEvent, "Register")
            .expect("goal");
        assert_eq!(resolved.kind, DefinitionKind::Goal);
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let text = "[[goals]]\nid = \"0af7af62-5660-4cf6-a5ef-4709b0bcf603\"\nname = \"A\"\n\
                    [[goals]]\nid = \"b97e9d6e-cfc1-4ec2-a1b3-f35d81fca118\"\nname = \"a\"\n";
        assert!(matches!(
            Definitions::from_toml(text),
            Err(Error::Definitions(_))
        ));
    }
}
