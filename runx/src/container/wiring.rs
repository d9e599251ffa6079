//! A container's network steps: the vif adopted at `create`, wired at `start`, unwired at
//! teardown (docs/network.md).

use std::fs;
use std::os::fd::AsFd;
use std::path::PathBuf;

use super::{ContainerError, Runtime};
use crate::network::{self, NetworkNamespace};
use crate::state::{self, ContainerState};
use crate::xen::Domain;

impl Runtime {
    /// The container's network namespace: its monitor's.
    pub(super) fn namespace_of(&self, state: &ContainerState) -> Result<fs::File, ContainerError> {
        let path = PathBuf::from(format!("/proc/{}/ns/net", state.pid));
        fs::File::open(&path).map_err(|source| ContainerError::Io {
            what: "cannot open the network namespace of the container's monitor",
            path,
            source,
        })
    }

    /// The namespace at teardown: the monitor's while it runs, else the engine's path (a
    /// namespace runx made went with the monitor).
    pub(super) fn namespace_left(&self, state: &ContainerState) -> Option<fs::File> {
        match &state.network {
            _ if state::monitor_alive(state) => self.namespace_of(state).ok(),
            NetworkNamespace::Path(path) => fs::File::open(path).ok(),
            NetworkNamespace::Host | NetworkNamespace::New => None,
        }
    }

    /// Moves the guest's vif backend into the container's namespace, and tells netback it is
    /// ready, as xl's hotplug script would: the guest's netfront connects while it boots (it
    /// waits for its vifs at boot), and the vif stays down until `start` wires it.
    pub(super) fn adopt_vif(&self, state: &ContainerState) -> Result<(), ContainerError> {
        let namespace = self.namespace_of(state)?;
        self.net.adopt(&network::vif_name(state.domid), namespace.as_fd())?;
        let key = format!("/local/domain/0/backend/vif/{}/0/hotplug-status", state.domid);
        self.xen.write_for(Domain { domid: state.domid, uuid: &state.uuid }, &key, "connected")?;
        Ok(())
    }

    /// Wires the vif to the interface the engine set up after `create`, and gives the guest its
    /// configuration before `start` lets it run the process. A namespace without one leaves the
    /// guest loopback only.
    pub(super) fn wire(&self, state: &mut ContainerState) -> Result<(), ContainerError> {
        let namespace = self.namespace_of(state)?;
        let Some(guest) = network::plan_guest(&self.net.facts(namespace.as_fd())?)? else {
            return Ok(());
        };
        state.wired = Some(guest.name.clone());
        self.store.save(state)?;
        let domain = Domain { domid: state.domid, uuid: &state.uuid };
        let key = runx_launch::keys::of_domain(state.domid, runx_launch::keys::NETWORK);
        let wired = self
            .net
            .wire(namespace.as_fd(), &network::vif_name(state.domid), &guest.name, guest.mtu)
            .map_err(ContainerError::from)
            .and_then(|()| Ok(self.xen.write_for(domain, &key, &guest.to_text())?));
        if wired.is_err() {
            let _ = self.net.unwire(namespace.as_fd(), &guest.name);
            state.wired = None;
            self.store.save(state)?;
        }
        wired
    }
}
