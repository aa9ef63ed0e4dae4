//! Reservations: Reserve (all-or-nothing, idempotent per order), CommitReservation and
//! ReleaseReservation as the contract says, and the sweeper's expiries.

use super::{Inventory, Result};
use crate::domain::reservation::check_release_reason;
use crate::domain::{
    self, Caller, INVENTORY_SERVICE, InventoryError, Problem, Reservation, ReservationStatus,
    ReserveRequest,
};
use crate::events;
use crate::store::{Finish, ReserveOutcome, Transition};

/// How many lapsed reservations one sweep round expires before looking again.
const SWEEP_BATCH: i64 = 100;

fn state_problem(reservation: &Reservation, message: &str) -> InventoryError {
    let status = reservation.status.as_str();
    InventoryError::precondition(
        message,
        vec![Problem {
            kind: match reservation.status {
                ReservationStatus::Held => "RESERVATION_HELD",
                ReservationStatus::Committed => "RESERVATION_COMMITTED",
                ReservationStatus::Released => "RESERVATION_RELEASED",
                ReservationStatus::Expired => "RESERVATION_EXPIRED",
            },
            subject: reservation.id.clone(),
            description: format!("the reservation is {status}"),
        }],
    )
}

impl Inventory {
    /// Holds every line of `request` for its order, or nothing; the order's existing
    /// reservation if it has one.
    pub async fn reserve(&self, caller: &Caller, request: ReserveRequest) -> Result<Reservation> {
        let now = domain::now();
        let ttl = chrono::Duration::from_std(request.ttl)
            .map_err(|e| InventoryError::Internal(Box::new(e)))?;
        let actor = caller.actor.clone();
        let outcome = self
            .store
            .reserve(&domain::new_id(), &request, now, now + ttl, move |r| {
                events::reservation(events::RESERVATION_HELD, &actor, r)
            })
            .await?;
        match outcome {
            ReserveOutcome::Held(reservation) | ReserveOutcome::Existing(reservation) => {
                Ok(reservation)
            }
            ReserveOutcome::Refused(problems) => {
                let message = if problems.iter().all(|p| p.kind == "INSUFFICIENT_STOCK") {
                    "insufficient stock; nothing was reserved"
                } else {
                    "some products cannot be reserved; nothing was reserved"
                };
                Err(InventoryError::precondition(message, problems))
            }
            ReserveOutcome::SameProduct(first, second) => Err(InventoryError::invalid(
                &format!("lines[{second}]"),
                &format!(
                    "names the same product as lines[{first}]; a product may appear in at most one line"
                ),
            )),
        }
    }

    /// HELD → COMMITTED; COMMITTED is returned unchanged; RELEASED, EXPIRED (or HELD past its
    /// expiry, which is expired first) fail with FAILED_PRECONDITION.
    pub async fn commit_reservation(&self, caller: &Caller, id: &str) -> Result<Reservation> {
        domain::require_id("reservation_id", id)?;
        match self.finish(caller, id, Finish::Commit, "").await? {
            Transition::Done(reservation) => Ok(reservation),
            Transition::Current(r) if r.status == ReservationStatus::Committed => Ok(r),
            Transition::Expired(r) | Transition::Current(r) => Err(state_problem(
                &r,
                "only a HELD reservation can be committed",
            )),
            Transition::NotFound => Err(InventoryError::NotFound("reservation")),
        }
    }

    /// HELD → RELEASED (HELD past its expiry → EXPIRED); RELEASED and EXPIRED are returned
    /// unchanged; COMMITTED fails with FAILED_PRECONDITION.
    pub async fn release_reservation(
        &self,
        caller: &Caller,
        id: &str,
        reason: &str,
    ) -> Result<Reservation> {
        domain::require_id("reservation_id", id)?;
        check_release_reason(reason)?;
        match self.finish(caller, id, Finish::Release, reason).await? {
            Transition::Done(r) | Transition::Expired(r) => Ok(r),
            Transition::Current(r)
                if matches!(
                    r.status,
                    ReservationStatus::Released | ReservationStatus::Expired
                ) =>
            {
                Ok(r)
            }
            Transition::Current(r) => Err(state_problem(
                &r,
                "a COMMITTED reservation cannot be released",
            )),
            Transition::NotFound => Err(InventoryError::NotFound("reservation")),
        }
    }

    async fn finish(
        &self,
        caller: &Caller,
        id: &str,
        finish: Finish,
        reason: &str,
    ) -> Result<Transition> {
        let done_type = match finish {
            Finish::Commit => events::RESERVATION_COMMITTED,
            Finish::Release => events::RESERVATION_RELEASED,
        };
        let (actor, expired_actor) = (caller.actor.clone(), caller.actor.clone());
        Ok(self
            .store
            .finish(
                id,
                finish,
                reason,
                domain::now(),
                move |r| events::reservation(done_type, &actor, r),
                move |r| events::reservation(events::RESERVATION_EXPIRED, &expired_actor, r),
            )
            .await?)
    }

    /// Expires every HELD reservation past its expiry (units back, one event each); returns
    /// how many this replica expired. Safe beside other replicas doing the same: each
    /// reservation is expired by one conditional update, which only one of them wins.
    pub async fn sweep(&self) -> Result<usize> {
        let mut expired = 0;
        loop {
            let now = domain::now();
            let lapsed = self.store.lapsed_reservations(now, SWEEP_BATCH).await?;
            for id in &lapsed {
                let won = self
                    .store
                    .expire(id, now, |r| {
                        events::reservation(events::RESERVATION_EXPIRED, INVENTORY_SERVICE, r)
                    })
                    .await?;
                expired += usize::from(won.is_some());
            }
            if (lapsed.len() as i64) < SWEEP_BATCH {
                return Ok(expired);
            }
        }
    }
}
