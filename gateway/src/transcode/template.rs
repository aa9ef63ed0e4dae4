//! `google.api.http` path templates: literals, `*`, `**`, `{field}`, `{field=pattern}` and a
//! trailing `:verb`, parsed once at start and matched against request paths.

/// One template segment.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `*`: exactly one segment.
    Any,
    /// `**`: the rest of the path (last segment only).
    Rest,
}

/// A variable: the field it binds and the segment range it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Variable {
    field: String,
    start: usize,
    /// Exclusive; `None` = to the end (`**`).
    end: Option<usize>,
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    segments: Vec<Segment>,
    variables: Vec<Variable>,
    verb: Option<String>,
    text: String,
}

impl Template {
    /// Parses `/v1/{name=projects/*/items/**}:verb`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid path template `{text}`: {why}");
        let body = text
            .strip_prefix('/')
            .ok_or_else(|| bad("must start with /"))?;
        // The verb follows the last ':' outside braces.
        let (path, verb) = match body.rfind(':') {
            Some(i) if !body[i..].contains('}') => (&body[..i], Some(body[i + 1..].to_owned())),
            _ => (body, None),
        };
        let mut segments = Vec::new();
        let mut variables = Vec::new();
        let mut rest = path;
        while !rest.is_empty() {
            if let Some(inner) = rest.strip_prefix('{') {
                let close = inner.find('}').ok_or_else(|| bad("unclosed {"))?;
                let (field, pattern) = match inner[..close].split_once('=') {
                    Some((field, pattern)) => (field, pattern),
                    None => (&inner[..close], "*"),
                };
                if field.is_empty() || !field.split('.').all(valid_ident) {
                    return Err(bad("bad field path"));
                }
                let start = segments.len();
                for part in pattern.split('/') {
                    segments.push(literal_or_wildcard(part).ok_or_else(|| bad("bad pattern"))?);
                }
                let end = if segments.last() == Some(&Segment::Rest) {
                    None
                } else {
                    Some(segments.len())
                };
                variables.push(Variable {
                    field: field.to_owned(),
                    start,
                    end,
                });
                rest = &inner[close + 1..];
                rest = rest.strip_prefix('/').unwrap_or(rest);
            } else {
                let (part, next) = rest.split_once('/').unwrap_or((rest, ""));
                segments.push(literal_or_wildcard(part).ok_or_else(|| bad("bad segment"))?);
                rest = next;
            }
        }
        if segments.iter().rev().skip(1).any(|s| *s == Segment::Rest) {
            return Err(bad("** must be last"));
        }
        Ok(Self {
            segments,
            variables,
            verb,
            text: text.to_owned(),
        })
    }

    /// Whether both match exactly the same paths (variable names aside): such rules conflict.
    pub fn same_shape(&self, other: &Self) -> bool {
        self.segments == other.segments && self.verb == other.verb
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Fields bound by the path.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.variables.iter().map(|v| v.field.as_str())
    }

    /// The template as an OpenAPI path and its parameters, in order: every variable becomes
    /// `{field}` whatever its pattern (`/v1/{name=projects/*/items/**}:verb` →
    /// `/v1/{name}:verb`), and a wildcard bound to no field becomes `{segmentN}` (N counts
    /// segments from 1).
    pub fn openapi(&self) -> (String, Vec<PathParameter>) {
        let mut path = String::new();
        let mut parameters = Vec::new();
        let mut index = 0;
        while index < self.segments.len() {
            path.push('/');
            if let Some(variable) = self.variables.iter().find(|v| v.start == index) {
                let end = variable.end.unwrap_or(self.segments.len());
                let covered = &self.segments[index..end];
                path.push_str(&format!("{{{}}}", variable.field));
                parameters.push(PathParameter {
                    name: variable.field.clone(),
                    field: Some(variable.field.clone()),
                    pattern: (covered != [Segment::Any]).then(|| value_pattern(covered)),
                });
                index = end;
                continue;
            }
            match &self.segments[index] {
                Segment::Literal(literal) => path.push_str(literal),
                wildcard => {
                    let name = format!("segment{}", index + 1);
                    path.push_str(&format!("{{{name}}}"));
                    parameters.push(PathParameter {
                        name,
                        field: None,
                        pattern: (*wildcard == Segment::Rest)
                            .then(|| value_pattern(std::slice::from_ref(wildcard))),
                    });
                }
            }
            index += 1;
        }
        if path.is_empty() {
            path.push('/');
        }
        if let Some(verb) = &self.verb {
            path.push(':');
            path.push_str(verb);
        }
        (path, parameters)
    }

    /// Matches `path` (percent-decoded per segment); returns `(field, value)` bindings.
    pub fn matches(&self, path: &str) -> Option<Vec<(String, String)>> {
        self.matches_parts(&PathParts::parse(path)?)
    }

    /// [`Self::matches`] on a path split once for every template tried.
    pub fn matches_parts(&self, path: &PathParts<'_>) -> Option<Vec<(String, String)>> {
        if self.verb.as_deref() != path.verb {
            return None;
        }
        let parts = &path.parts;
        let mut i = 0;
        for (index, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Rest => {
                    if index != self.segments.len() - 1 {
                        return None;
                    }
                    i = parts.len();
                }
                Segment::Any => {
                    if parts.get(i).is_none_or(|p| p.is_empty()) {
                        return None;
                    }
                    i += 1;
                }
                Segment::Literal(literal) => {
                    if parts.get(i) != Some(&literal.as_str()) {
                        return None;
                    }
                    i += 1;
                }
            }
        }
        if i != parts.len() {
            return None;
        }
        let mut bindings = Vec::with_capacity(self.variables.len());
        for variable in &self.variables {
            let end = variable.end.unwrap_or(parts.len());
            let raw = parts.get(variable.start..end)?.join("/");
            let value = percent_encoding::percent_decode_str(&raw)
                .decode_utf8()
                .ok()?;
            bindings.push((variable.field.clone(), value.into_owned()));
        }
        Some(bindings)
    }
}

/// A request path split into segments and its custom verb (`/v1/a/b:cancel` → `[v1, a, b]`,
/// `cancel`), once per request rather than once per template.
#[derive(Debug)]
pub struct PathParts<'a> {
    parts: Vec<&'a str>,
    verb: Option<&'a str>,
}

impl<'a> PathParts<'a> {
    /// `None` unless the path starts with `/`.
    pub fn parse(path: &'a str) -> Option<Self> {
        let body = path.strip_prefix('/')?;
        let mut parts: Vec<&str> = if body.is_empty() {
            Vec::new()
        } else {
            body.split('/').collect()
        };
        // The verb follows the last ':' of the last segment.
        let mut verb = None;
        if let Some(last) = parts.last_mut()
            && let Some((segment, tail)) = last.rsplit_once(':')
        {
            *last = segment;
            verb = Some(tail);
        }
        Some(Self { parts, verb })
    }
}

/// One parameter of [`Template::openapi`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathParameter {
    /// The name in the OpenAPI path.
    pub name: String,
    /// The request field the value binds (a dotted path of proto names), if any.
    pub field: Option<String>,
    /// A regular expression for values that are not one plain segment — several segments
    /// (slashes included) or a fixed literal; `None` for a plain `*`.
    pub pattern: Option<String>,
}

/// The regular expression a variable's value matches (after percent-decoding, as bound).
fn value_pattern(segments: &[Segment]) -> String {
    let mut pattern = String::from("^");
    for (i, segment) in segments.iter().enumerate() {
        let separator = if i == 0 { "" } else { "/" };
        match segment {
            Segment::Literal(literal) => {
                pattern.push_str(separator);
                pattern.push_str(&literal.replace('.', "\\."));
            }
            Segment::Any => {
                pattern.push_str(separator);
                pattern.push_str("[^/]+");
            }
            // `**` may match no segment at all, separator included.
            Segment::Rest if i == 0 => pattern.push_str(".*"),
            Segment::Rest => pattern.push_str("(/.*)?"),
        }
    }
    pattern.push('$');
    pattern
}

fn literal_or_wildcard(part: &str) -> Option<Segment> {
    match part {
        "*" => Some(Segment::Any),
        "**" => Some(Segment::Rest),
        "" => None,
        literal
            if literal
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.~".contains(c)) =>
        {
            Some(Segment::Literal(literal.to_owned()))
        }
        _ => None,
    }
}

fn valid_ident(part: &str) -> bool {
    !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(template: &str, path: &str) -> Option<Vec<(String, String)>> {
        Template::parse(template).unwrap().matches(path)
    }

    #[test]
    fn templates_bind_variables_patterns_and_verbs() {
        assert_eq!(
            bind("/v1/orders/{order_id}", "/v1/orders/o-1"),
            Some(vec![("order_id".into(), "o-1".into())])
        );
        assert_eq!(bind("/v1/orders/{order_id}", "/v1/orders/o-1:cancel"), None);
        assert_eq!(
            bind("/v1/orders/{order_id}:cancel", "/v1/orders/o%2F1:cancel"),
            Some(vec![("order_id".into(), "o/1".into())])
        );
        assert_eq!(
            bind("/v1/{name=projects/*/items/**}", "/v1/projects/p/items/a/b"),
            Some(vec![("name".into(), "projects/p/items/a/b".into())])
        );
        assert_eq!(
            bind(
                "/v1/inventory/products/{product.product_id}",
                "/v1/inventory/products/x"
            ),
            Some(vec![("product.product_id".into(), "x".into())])
        );
        assert_eq!(bind("/v1/orders", "/v1/orders/extra"), None);
        assert_eq!(bind("/v1/orders/{id}", "/v1/orders/"), None);
    }

    /// Variables become `{field}` whatever their pattern; patterns survive as regexes.
    #[test]
    fn templates_render_as_openapi_paths() {
        let openapi = |text: &str| Template::parse(text).unwrap().openapi();
        let (path, parameters) = openapi("/v1/orders/{order_id}:cancel");
        assert_eq!(path, "/v1/orders/{order_id}:cancel");
        assert_eq!(parameters.len(), 1);
        assert_eq!(parameters[0].field.as_deref(), Some("order_id"));
        assert_eq!(parameters[0].pattern, None);
        let (path, parameters) = openapi("/v1/{name=projects/*/items/**}:watch");
        assert_eq!(path, "/v1/{name}:watch");
        assert_eq!(
            parameters[0].pattern.as_deref(),
            Some("^projects/[^/]+/items(/.*)?$")
        );
        let (path, parameters) = openapi("/v1/*/things/{thing.id}");
        assert_eq!(path, "/v1/{segment2}/things/{thing.id}");
        assert_eq!(parameters[0].name, "segment2");
        assert_eq!(parameters[0].field, None);
        assert_eq!(parameters[1].name, "thing.id");
        assert_eq!(
            openapi("/.well-known/jwks.json").0,
            "/.well-known/jwks.json"
        );
    }

    #[test]
    fn invalid_templates_are_rejected() {
        for bad in ["v1/x", "/v1/{", "/v1/{a=**}/b", "/v1/{a b}", "/v1//x"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }
}
