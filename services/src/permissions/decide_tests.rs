//! Unit tests of the decisions against the matrix: every plan against the
//! same facts, so a changed cell fails a named case.

use super::*;
use crate::permissions::matrix::PLANS;

fn act(other: &str, since_ms: u64) -> Active {
    Active {
        other: other.into(),
        since_ms,
    }
}

fn me(plan: Plan) -> Subject<'static> {
    Subject { user: "me", plan }
}

#[test]
fn own_videos_for_everyone() {
    for p in PLANS {
        assert!(
            video(me(p), "me", &VideoFacts::default()).allowed(),
            "{p:?}"
        );
    }
}

#[test]
fn videos_of_others_by_plan() {
    // (plan, athlete's video with active relationship, stranger's, granted stranger's)
    let expect = [
        (Plan::Admin, true, true, true),
        (Plan::CoachPremium, true, false, false),
        (Plan::CoachBasic, true, false, false),
        (Plan::AthletePaid, false, false, true),
        (Plan::AthleteFree, false, false, false),
    ];
    let athletes = VideoFacts {
        athletes: vec![act("a1", 5)],
        ..VideoFacts::default()
    };
    let granted = VideoFacts {
        granted: true,
        ..VideoFacts::default()
    };
    let entitled = VideoFacts {
        entitled: true,
        ..VideoFacts::default()
    };
    for (p, athlete, stranger, purchased) in expect {
        assert_eq!(
            video(me(p), "a1", &athletes).allowed(),
            athlete,
            "{p:?} athlete"
        );
        assert_eq!(
            video(me(p), "x", &VideoFacts::default()).allowed(),
            stranger,
            "{p:?} stranger"
        );
        assert_eq!(
            video(me(p), "x", &granted).allowed(),
            purchased,
            "{p:?} granted"
        );
        assert_eq!(
            video(me(p), "x", &entitled),
            if p == Plan::Admin {
                Decision::Allow(Why::Admin)
            } else {
                Decision::Allow(Why::Entitled)
            },
            "{p:?}: an entitlement to a program showing it opens it on every plan"
        );
    }
}

#[test]
fn basic_coach_sees_the_three_longest_relationships() {
    let facts = VideoFacts {
        athletes: vec![act("d", 40), act("b", 10), act("a", 10), act("c", 30)],
        ..VideoFacts::default()
    };
    assert_eq!(first_athletes(&facts.athletes, 3), vec!["a", "b", "c"]);
    let basic = me(Plan::CoachBasic);
    for a in ["a", "b", "c"] {
        assert_eq!(
            video(basic, a, &facts),
            Decision::Allow(Why::WithinBasicLimit)
        );
    }
    assert_eq!(
        video(basic, "d", &facts),
        Decision::Deny(Why::BeyondBasicLimit)
    );
    assert_eq!(
        video(me(Plan::CoachPremium), "d", &facts),
        Decision::Allow(Why::ActiveAthlete)
    );
}

#[test]
fn messaging_by_plan() {
    let facts = MessagingFacts {
        athletes: vec!["a1".into()],
        coaches: vec!["c1".into()],
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    use ThreadKind::{Direct, Group};
    // (plan, direct to own athlete, group of own athletes + stranger,
    //  direct to own coach, group with own coach, direct to stranger)
    let expect = [
        (Plan::Admin, true, true, true, true, true),
        (Plan::CoachPremium, true, true, true, true, true),
        (Plan::CoachBasic, true, false, false, false, false),
        (Plan::AthletePaid, false, false, true, false, false),
        (Plan::AthleteFree, false, false, false, false, false),
    ];
    for (p, to_athlete, group_mixed, to_coach, group_coach, stranger) in expect {
        let m = |k, o: &[&str]| message(me(p), k, &s(o), &facts).allowed();
        assert_eq!(m(Direct, &["a1"]), to_athlete, "{p:?} direct athlete");
        assert_eq!(m(Group, &["a1", "zz"]), group_mixed, "{p:?} group mixed");
        assert_eq!(m(Direct, &["c1"]), to_coach, "{p:?} direct coach");
        assert_eq!(m(Group, &["c1", "a1"]), group_coach, "{p:?} group coach");
        assert_eq!(m(Direct, &["zz"]), stranger, "{p:?} stranger");
    }
    assert!(message(me(Plan::CoachBasic), Group, &s(&["a1"]), &facts).allowed());
}

#[test]
fn athletes_never_message_athletes() {
    // An athlete's "coach" list only ever holds coaches of active
    // relationships; another athlete is never in it.
    let facts = MessagingFacts {
        athletes: vec![],
        coaches: vec!["coach".into()],
    };
    for p in [Plan::AthletePaid, Plan::AthleteFree] {
        assert!(!message(me(p), ThreadKind::Direct, &["athlete2".into()], &facts).allowed());
    }
}

#[test]
fn analytics_and_admin_tools() {
    let expect = [
        (Plan::Admin, true, true),
        (Plan::CoachPremium, true, false),
        (Plan::CoachBasic, true, false),
        (Plan::AthletePaid, true, false),
        (Plan::AthleteFree, false, false),
    ];
    for (p, an, ad) in expect {
        assert_eq!(analytics(me(p)).allowed(), an, "{p:?} analytics");
        assert_eq!(admin(me(p)).allowed(), ad, "{p:?} admin");
    }
}

#[test]
fn room_threads_are_open_to_every_row() {
    // No relationship facts at all: a free athlete, a paid one with a
    // stranger coach, a basic coach with athletes not theirs, all write in
    // the thread of a room they are members of.
    let none = MessagingFacts::default();
    let others = vec!["coach-x".to_string(), "athlete-y".to_string()];
    for p in PLANS {
        let d = message(me(p), ThreadKind::Room, &others, &none);
        assert_eq!(d, Decision::Allow(Why::RoomMember), "{p:?}");
    }
}

#[test]
fn room_rule_does_not_open_other_threads_to_free_athletes() {
    let none = MessagingFacts::default();
    let others = vec!["coach-x".to_string(), "athlete-y".to_string()];
    for kind in [ThreadKind::Direct, ThreadKind::Group] {
        let d = message(me(Plan::AthleteFree), kind, &others, &none);
        assert_eq!(d, Decision::Deny(Why::NoMessaging), "{kind:?}");
    }
    let d = message(me(Plan::AthletePaid), ThreadKind::Group, &others, &none);
    assert_eq!(d, Decision::Deny(Why::DirectOnly));
}
