//! GetPreferences / SetPreferences on both backends: defaults until set, a replace that reads
//! back exactly, each user's own, bad input named by field and nothing stored.

use ironmesh_proto::ironmesh::notification::v1::{self as pb};
use ironmesh_runtime::ServiceKind;
use ironmesh_testkit::{TestMesh, authed, backends};
use tonic::Code;

fn prefs(
    defaults: &[pb::Channel],
    overrides: &[(&str, &[pb::Channel])],
) -> pb::NotificationPreferences {
    pb::NotificationPreferences {
        default_channels: defaults.iter().map(|c| (*c).into()).collect(),
        event_types: overrides
            .iter()
            .map(|(t, cs)| pb::EventTypePreference {
                event_type: (*t).to_owned(),
                channels: cs.iter().map(|c| (*c).into()).collect(),
            })
            .collect(),
        updated_at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preferences_default_replace_and_stay_per_user() {
    use pb::Channel::{Email, InApp, Webhook};
    for backend in backends() {
        let mesh = TestMesh::start(backend, &[ServiceKind::Auth, ServiceKind::Notification]).await;
        let (ada, bob) = (mesh.customer().await, mesh.customer().await);
        let mut client = mesh.notification().await;
        let get = |token: &str| authed(pb::GetPreferencesRequest {}, token);

        let fresh = client
            .get_preferences(get(&ada.access_token))
            .await
            .unwrap()
            .into_inner();
        let fresh = fresh.preferences.unwrap();
        assert_eq!(
            fresh.default_channels,
            [i32::from(InApp), i32::from(Email)],
            "{backend:?}"
        );
        assert!(fresh.event_types.is_empty() && fresh.updated_at.is_none());

        let wanted = prefs(
            &[InApp],
            &[("orders.*", &[InApp, Webhook]), ("orders.order.paid", &[])],
        );
        let set = client
            .set_preferences(authed(
                pb::SetPreferencesRequest {
                    preferences: Some(wanted.clone()),
                },
                &ada.access_token,
            ))
            .await
            .unwrap()
            .into_inner()
            .preferences
            .unwrap();
        assert!(set.updated_at.is_some());
        let read = client
            .get_preferences(get(&ada.access_token))
            .await
            .unwrap()
            .into_inner()
            .preferences
            .unwrap();
        assert_eq!(read, set, "{backend:?}: reads back what was set");
        assert_eq!(read.event_types, wanted.event_types);

        // Bob's are his own (still the defaults).
        let bobs = client
            .get_preferences(get(&bob.access_token))
            .await
            .unwrap()
            .into_inner()
            .preferences
            .unwrap();
        assert!(bobs.event_types.is_empty());

        // Bad input: each field named, nothing replaced.
        let bad = prefs(&[pb::Channel::Unspecified], &[("Orders!", &[Email, Email])]);
        let err = client
            .set_preferences(authed(
                pb::SetPreferencesRequest {
                    preferences: Some(bad),
                },
                &ada.access_token,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let fields = ironmesh_testkit::violations(&err);
        assert_eq!(
            fields,
            [
                "preferences.default_channels[0]",
                "preferences.event_types[0].event_type",
                "preferences.event_types[0].channels[1]",
            ]
        );
        let after = client
            .get_preferences(get(&ada.access_token))
            .await
            .unwrap()
            .into_inner()
            .preferences
            .unwrap();
        assert_eq!(after, read, "a refused request changes nothing");

        let anonymous = client
            .get_preferences(pb::GetPreferencesRequest {})
            .await
            .unwrap_err();
        assert_eq!(anonymous.code(), Code::Unauthenticated);
        assert!(mesh.shutdown().await.is_empty());
    }
}
