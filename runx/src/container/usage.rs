//! A running container's resources: what Xen counts (`runx events`) and changes to them
//! (`runx update`).

use oci_spec::runtime::LinuxResources;

use super::{ContainerError, Runtime};
use crate::container_id::ContainerId;
use crate::network;
use crate::state::{ContainerState, Status};
use crate::stats::Stats;
use crate::update;
use crate::xen::{Domain, DomainUsage};

impl Runtime {
    /// What Xen counts for the container's domain, and its guest's traffic.
    pub fn stats(&self, id: &str) -> Result<Stats, ContainerError> {
        let (_, state) = self.load(id)?;
        let usage = self.usage(&state, "read the stats of")?;
        let interface = state.wired.as_ref().and_then(|name| {
            let counters = network::guest_counters(state.pid, &network::vif_name(state.domid)).ok()??;
            Some((name.clone(), counters))
        });
        Ok(Stats::new(&usage, interface))
    }

    /// Applies `resources` to the container's domain.
    pub fn update(&self, id: &str, resources: &LinuxResources) -> Result<(), ContainerError> {
        let id = ContainerId::parse(id)?;
        let _lock = self.store.lock(&id)?;
        let state = self.store.load(&id)?;
        let usage = self.usage(&state, "update")?;
        let domain = Domain { domid: state.domid, uuid: &state.uuid };
        for change in update::adjustments(resources, &usage)? {
            self.xen.adjust(domain, &change)?;
        }
        Ok(())
    }

    /// The domain's usage, for a container that has one.
    fn usage(&self, state: &ContainerState, action: &'static str) -> Result<DomainUsage, ContainerError> {
        let status = self.status(state);
        if !matches!(status, Status::Created | Status::Running | Status::Paused) {
            return Err(ContainerError::WrongState { action, id: state.id.clone(), status: status.as_str() });
        }
        self.xen.usage(Domain { domid: state.domid, uuid: &state.uuid })?.ok_or(ContainerError::NotRunning)
    }
}
