//! Annotations drawn on a video: shapes in coordinates normalized to the
//! video frame (0..=1 on both axes, origin top-left), anchored to a video
//! time in milliseconds. Validation lives here so every client and the
//! server agree on what is acceptable.

use serde::{Deserialize, Serialize};

use crate::{ErrorCode, Limits, UserId, valid_id};

/// A point in normalized frame coordinates, encoded as `[x, y]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point(pub f32, pub f32);

impl Point {
    fn valid(self) -> bool {
        self.0.is_finite()
            && self.1.is_finite()
            && (0.0..=1.0).contains(&self.0)
            && (0.0..=1.0).contains(&self.1)
    }
}

/// A span of video time, `from_ms..=to_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeRange {
    pub from_ms: u64,
    pub to_ms: u64,
}

/// Colour (0xRRGGBBAA) and line width (fraction of the frame height).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Style {
    pub color: u32,
    pub width: f32,
}

impl Default for Style {
    fn default() -> Self {
        Style {
            color: 0xff3b30ff,
            width: 0.004,
        }
    }
}

crate::tag_first! {
tag = "k", remote = "Shape", expecting = "a shape";
/// The geometry of an annotation.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Freehand pen stroke.
    Stroke {
        points: Vec<Point>,
    },
    Line {
        a: Point,
        b: Point,
    },
    /// Line with an arrow head at `b`.
    Arrow {
        a: Point,
        b: Point,
    },
    /// Ellipse (a circle when `rx`/`ry` describe the same pixel length).
    Ellipse {
        c: Point,
        rx: f32,
        ry: f32,
    },
    /// Axis-aligned rectangle with opposite corners `a` and `b`.
    Rect {
        a: Point,
        b: Point,
    },
    /// Angle at vertex `v` between rays to `a` and `b`. `deg` is computed by
    /// the server on commit (whatever the client sent is replaced), using the
    /// room's aspect ratio so the angle is true in pixels, not in 0..1 units.
    Angle {
        a: Point,
        v: Point,
        b: Point,
        deg: f32,
    },
    /// A coach's voice-over (a ready `voice_over` asset) played from
    /// `t_ms` for `dur_ms`. Added by the server when an upload with `room`
    /// and `at_ms` is ready; clients cannot add or edit one directly.
    VoiceOver {
        asset: String,
    },
    /// Text label with its top-left corner at `at`; `size` is a fraction of
    /// the frame height.
    Text {
        at: Point,
        text: String,
        size: f32,
    },
}
}

/// One annotation: a shape anchored to a video time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    /// Client-chosen id, unique in the room (see [`valid_id`]).
    pub id: String,
    /// Filled in by the server with the author's user id.
    #[serde(default)]
    pub author: UserId,
    /// Video time the annotation is anchored at, in ms.
    pub t_ms: u64,
    /// How long it stays visible from `t_ms`; `None` means until the end.
    #[serde(default)]
    pub dur_ms: Option<u32>,
    #[serde(default)]
    pub style: Style,
    pub shape: Shape,
}

/// Longest video time accepted for an anchor (24 hours).
pub const MAX_VIDEO_MS: u64 = 24 * 3600 * 1000;

/// A validation failure: a stable code and a human message.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    pub code: ErrorCode,
    pub message: String,
}

impl Invalid {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Invalid {
            code,
            message: message.into(),
        }
    }
}

fn coords(points: &[Point]) -> Result<(), Invalid> {
    match points.iter().position(|p| !p.valid()) {
        None => Ok(()),
        Some(i) => Err(Invalid::new(
            ErrorCode::InvalidCoordinates,
            format!("point {i} is not a finite coordinate in 0..=1"),
        )),
    }
}

/// Checks a batch of live (in-progress) stroke points.
pub fn validate_points(points: &[Point], limits: &Limits) -> Result<(), Invalid> {
    if points.len() > limits.max_points_per_batch as usize {
        return Err(Invalid::new(
            ErrorCode::TooManyPoints,
            format!(
                "{} points in one batch; at most {}",
                points.len(),
                limits.max_points_per_batch
            ),
        ));
    }
    coords(points)
}

fn size_ok(v: f32, max: f32) -> bool {
    v.is_finite() && v > 0.0 && v <= max
}

impl Annotation {
    /// Checks ids, time anchor, style and geometry against the limits.
    pub fn validate(&self, limits: &Limits) -> Result<(), Invalid> {
        if !valid_id(&self.id) {
            return Err(Invalid::new(
                ErrorCode::Invalid,
                "annotation id must be 1-64 characters of [A-Za-z0-9_.:@-]",
            ));
        }
        if self.t_ms > MAX_VIDEO_MS || self.dur_ms.is_some_and(|d| u64::from(d) > MAX_VIDEO_MS) {
            return Err(Invalid::new(
                ErrorCode::Invalid,
                "t_ms and dur_ms must be at most 24 hours",
            ));
        }
        if !size_ok(self.style.width, 0.1) {
            return Err(Invalid::new(
                ErrorCode::Invalid,
                "style.width must be in (0, 0.1] of the frame height",
            ));
        }
        match &self.shape {
            Shape::Stroke { points } => {
                if points.is_empty() {
                    return Err(Invalid::new(ErrorCode::Invalid, "a stroke needs points"));
                }
                if points.len() > limits.max_points_per_stroke as usize {
                    return Err(Invalid::new(
                        ErrorCode::TooManyPoints,
                        format!(
                            "{} points in one stroke; at most {}",
                            points.len(),
                            limits.max_points_per_stroke
                        ),
                    ));
                }
                coords(points)
            }
            Shape::Line { a, b } | Shape::Arrow { a, b } | Shape::Rect { a, b } => {
                coords(&[*a, *b])
            }
            Shape::Ellipse { c, rx, ry } => {
                coords(&[*c])?;
                if !size_ok(*rx, 1.0) || !size_ok(*ry, 1.0) {
                    return Err(Invalid::new(
                        ErrorCode::InvalidCoordinates,
                        "ellipse radii must be in (0, 1]",
                    ));
                }
                Ok(())
            }
            Shape::Angle { a, v, b, .. } => {
                coords(&[*a, *v, *b])?;
                if a == v || b == v {
                    return Err(Invalid::new(
                        ErrorCode::Invalid,
                        "an angle's arms must not start and end at the vertex",
                    ));
                }
                Ok(())
            }
            Shape::VoiceOver { asset } => {
                if valid_id(asset) {
                    Ok(())
                } else {
                    Err(Invalid::new(
                        ErrorCode::Invalid,
                        "voice-over asset id is not valid",
                    ))
                }
            }
            Shape::Text { at, text, size } => {
                coords(&[*at])?;
                if text.is_empty() {
                    return Err(Invalid::new(ErrorCode::Invalid, "a label needs text"));
                }
                if text.len() > limits.max_label_bytes as usize {
                    return Err(Invalid::new(
                        ErrorCode::TextTooLong,
                        format!(
                            "label is {} bytes; at most {}",
                            text.len(),
                            limits.max_label_bytes
                        ),
                    ));
                }
                if !size_ok(*size, 0.5) {
                    return Err(Invalid::new(
                        ErrorCode::Invalid,
                        "label size must be in (0, 0.5] of the frame height",
                    ));
                }
                Ok(())
            }
        }
    }

    /// Fills in server-computed values (the angle in degrees).
    pub fn finish(&mut self, aspect: f32) {
        if let Shape::Angle { a, v, b, deg } = &mut self.shape {
            *deg = angle_degrees(*a, *v, *b, aspect);
        }
    }

    /// True if the annotation is visible anywhere in `range`.
    pub fn overlaps(&self, range: &TimeRange) -> bool {
        let end = match self.dur_ms {
            Some(d) => self.t_ms.saturating_add(u64::from(d)),
            None => u64::MAX,
        };
        self.t_ms <= range.to_ms && end >= range.from_ms
    }
}

/// The angle at `v` between `a` and `b`, in degrees (0..=180), measured in
/// pixels of a frame whose width/height ratio is `aspect`.
pub fn angle_degrees(a: Point, v: Point, b: Point, aspect: f32) -> f32 {
    let (ax, ay) = (
        f64::from(a.0 - v.0) * f64::from(aspect),
        f64::from(a.1 - v.1),
    );
    let (bx, by) = (
        f64::from(b.0 - v.0) * f64::from(aspect),
        f64::from(b.1 - v.1),
    );
    let cross = ax * by - ay * bx;
    let dot = ax * bx + ay * by;
    let deg = cross.abs().atan2(dot).to_degrees();
    // Two decimals are more than any coach reads off a screen.
    ((deg * 100.0).round() / 100.0) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(shape: Shape) -> Annotation {
        Annotation {
            id: "a1".into(),
            author: String::new(),
            t_ms: 1000,
            dur_ms: Some(2000),
            style: Style::default(),
            shape,
        }
    }

    #[test]
    fn right_angle_in_pixels_not_units() {
        // On a square frame these arms are perpendicular.
        let d = angle_degrees(Point(0.5, 0.0), Point(0.5, 0.5), Point(1.0, 0.5), 1.0);
        assert!((d - 90.0).abs() < 0.01, "{d}");
        // A 45 degree diagonal in units is steeper than 45 in 16:9 pixels.
        let d = angle_degrees(
            Point(1.0, 0.5),
            Point(0.5, 0.5),
            Point(1.0, 0.0),
            16.0 / 9.0,
        );
        assert!((d - 29.36).abs() < 0.01, "{d}");
    }

    #[test]
    fn finish_overwrites_client_degrees() {
        let mut a = ann(Shape::Angle {
            a: Point(0.0, 0.5),
            v: Point(0.5, 0.5),
            b: Point(1.0, 0.5),
            deg: 12.0,
        });
        a.finish(1.0);
        assert_eq!(
            a.shape,
            Shape::Angle {
                a: Point(0.0, 0.5),
                v: Point(0.5, 0.5),
                b: Point(1.0, 0.5),
                deg: 180.0
            }
        );
    }

    #[test]
    fn rejects_bad_geometry() {
        let l = Limits::default();
        let bad = ann(Shape::Line {
            a: Point(0.1, f32::NAN),
            b: Point(0.2, 0.2),
        });
        assert_eq!(
            bad.validate(&l).unwrap_err().code,
            ErrorCode::InvalidCoordinates
        );
        let bad = ann(Shape::Rect {
            a: Point(1.5, 0.0),
            b: Point(0.2, 0.2),
        });
        assert_eq!(
            bad.validate(&l).unwrap_err().code,
            ErrorCode::InvalidCoordinates
        );
        let many = ann(Shape::Stroke {
            points: vec![Point(0.1, 0.1); 5000],
        });
        assert_eq!(
            many.validate(&l).unwrap_err().code,
            ErrorCode::TooManyPoints
        );
        let long = ann(Shape::Text {
            at: Point(0.1, 0.1),
            text: "x".repeat(281),
            size: 0.05,
        });
        assert_eq!(long.validate(&l).unwrap_err().code, ErrorCode::TextTooLong);
        let ok = ann(Shape::Ellipse {
            c: Point(0.5, 0.5),
            rx: 0.1,
            ry: 0.2,
        });
        assert!(ok.validate(&l).is_ok());
    }

    #[test]
    fn overlap_respects_duration() {
        let a = ann(Shape::Line {
            a: Point(0.0, 0.0),
            b: Point(1.0, 1.0),
        });
        assert!(a.overlaps(&TimeRange {
            from_ms: 2500,
            to_ms: 9000
        }));
        assert!(!a.overlaps(&TimeRange {
            from_ms: 3001,
            to_ms: 9000
        }));
        assert!(!a.overlaps(&TimeRange {
            from_ms: 0,
            to_ms: 999
        }));
    }
}
