//! Per-address limits: how many connections and subscriptions one remote IP address holds.
//!
//! `RpcConfig::max_connections` and `max_subscriptions_per_connection` bound the server as a
//! whole and one connection; neither stops one address from taking every slot. An
//! [`AddressLimits`] counts, per remote IP address (IPv4-mapped IPv6 addresses count as their
//! IPv4 address), what the address holds, and refuses more than its share:
//!
//! - *connections*: JSON-RPC `POST`s being served (from complete body to answer, as a slot of
//!   `max_connections`) plus open WebSockets (from the upgrade until the TCP connection is gone);
//! - *subscriptions*: live `atoma_subscribeEvents` subscriptions over all its WebSockets.
//!
//! A permit is released when dropped; an address holding nothing takes no memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// What one address may hold at once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PerAddress {
    pub connections: u32,
    pub subscriptions: u32,
}

#[derive(Clone, Copy, Default, Debug)]
struct Held {
    connections: u32,
    subscriptions: u32,
}

impl Held {
    fn of(&mut self, kind: Kind) -> &mut u32 {
        match kind {
            Kind::Connection => &mut self.connections,
            Kind::Subscription => &mut self.subscriptions,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Connection,
    Subscription,
}

/// The counts of every address that holds something, shared by all connections.
#[derive(Debug)]
pub(crate) struct AddressLimits {
    limits: PerAddress,
    held: Mutex<HashMap<IpAddr, Held>>,
}

impl AddressLimits {
    pub fn new(limits: PerAddress) -> Arc<Self> {
        Arc::new(AddressLimits { limits, held: Mutex::new(HashMap::new()) })
    }

    /// A permit for one more `kind` from `ip`, or `None` when it holds its maximum.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr, kind: Kind) -> Option<AddressPermit> {
        let ip = ip.to_canonical();
        let max = match kind {
            Kind::Connection => self.limits.connections,
            Kind::Subscription => self.limits.subscriptions,
        };
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let count = held.entry(ip).or_default().of(kind);
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(AddressPermit { limits: Arc::clone(self), ip, kind })
    }

    /// What `ip` holds now: (connections, subscriptions).
    #[cfg(test)]
    fn holds(&self, ip: IpAddr) -> (u32, u32) {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.get(&ip.to_canonical()).map_or((0, 0), |h| (h.connections, h.subscriptions))
    }
}

/// One connection or subscription of one address; released when dropped.
#[derive(Debug)]
pub(crate) struct AddressPermit {
    limits: Arc<AddressLimits>,
    ip: IpAddr,
    kind: Kind,
}

impl Drop for AddressPermit {
    fn drop(&mut self) {
        let mut held = self.limits.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = held.get_mut(&self.ip) {
            let count = entry.of(self.kind);
            debug_assert!(*count > 0, "a permit outlived its count");
            *count = count.saturating_sub(1);
            if entry.connections == 0 && entry.subscriptions == 0 {
                held.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_count_and_permits_come_back() {
        let limits = AddressLimits::new(PerAddress { connections: 2, subscriptions: 1 });
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let first = limits.try_acquire(a, Kind::Connection).expect("first");
        let second = limits.try_acquire(a, Kind::Connection).expect("second");
        assert!(limits.try_acquire(a, Kind::Connection).is_none(), "a third from one address");
        assert!(limits.try_acquire(b, Kind::Connection).is_some(), "another address is not counted");
        let subscription = limits.try_acquire(a, Kind::Subscription).expect("subscriptions apart");
        assert!(limits.try_acquire(a, Kind::Subscription).is_none());
        assert_eq!(limits.holds(a), (2, 1));
        drop(first);
        assert!(limits.try_acquire(a, Kind::Connection).is_some(), "a released permit is free again");
        drop((second, subscription));
        assert_eq!(limits.holds(a), (0, 0));
        assert!(limits.held.lock().expect("lock").is_empty(), "an address holding nothing is forgotten");
    }

    #[test]
    fn an_ipv4_mapped_address_counts_as_its_ipv4_address() {
        let limits = AddressLimits::new(PerAddress { connections: 1, subscriptions: 1 });
        let v4: IpAddr = [10, 0, 0, 7].into();
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().expect("address");
        let _held = limits.try_acquire(mapped, Kind::Connection).expect("first");
        assert!(limits.try_acquire(v4, Kind::Connection).is_none());
    }
}
