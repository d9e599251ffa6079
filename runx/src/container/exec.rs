//! What `runx exec` runs: the process (runc's `--process` file, or the container's own process
//! with runc's flags applied) as a launch spec for the container's runx-init.

use oci_spec::runtime::{Capability, Process};
use runx_launch::RootfsMode;

use super::{ContainerError, Runtime};
use crate::bundle::Bundle;
use crate::guest_kind::GuestKind;
use crate::home;
use crate::launch;
use crate::state::{ContainerState, Status};

/// runc exec's flags that shape the process, over the container's own process.
#[derive(Debug, Default)]
pub struct ExecFlags {
    pub args: Vec<String>,
    pub tty: bool,
    pub cwd: Option<String>,
    pub env: Vec<String>,
    pub user: Option<(u32, Option<u32>)>,
    pub additional_gids: Vec<u32>,
    pub no_new_privs: bool,
    pub caps: Vec<Capability>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExecRefused {
    #[error("cannot exec in container {id}: it is {status}, and exec needs it running")]
    NotRunning { id: String, status: &'static str },
    #[error("cannot exec in container {0}: it runs a kernel of its own, without runx-init to start a second process")]
    OwnKernel(String),
    #[error("exec needs a process: give its args, or --process with a process.json")]
    NoArgs,
}

impl Runtime {
    /// The container, and the launch spec of the process to exec in it.
    pub fn exec_spec(
        &self,
        id: &str,
        process: Option<Process>,
        flags: &ExecFlags,
    ) -> Result<(ContainerState, Vec<u8>), ContainerError> {
        let (_, state) = self.load(id)?;
        let status = self.status(&state);
        if status != Status::Running {
            return Err(ExecRefused::NotRunning { id: state.id, status: status.as_str() }.into());
        }
        if state.guest != GuestKind::RunxInit {
            return Err(ExecRefused::OwnKernel(state.id).into());
        }
        let bundle = Bundle::load(&state.bundle)?;
        let process = match process {
            Some(process) => process,
            None => with_flags(bundle.spec.process().clone().unwrap_or_default(), flags)?,
        };
        let mut oci = bundle.spec.clone();
        oci.set_process(Some(process));
        let mut launch = launch::from_oci(&oci, launch::rootfs(RootfsMode::Initramfs, false))?;
        let uid = launch.spec.process.user.uid;
        home::add_home(&mut launch.spec.process.env, &bundle.rootfs, uid);
        launch.spec.wait_for_start = false;
        let json = launch.spec.to_json().map_err(|e| launch::LaunchError::Spec(e.to_string()))?;
        Ok((state, json))
    }
}

/// The container's process with runc exec's flags applied, as runc does.
fn with_flags(mut process: Process, flags: &ExecFlags) -> Result<Process, ExecRefused> {
    if flags.args.is_empty() {
        return Err(ExecRefused::NoArgs);
    }
    process.set_args(Some(flags.args.clone()));
    process.set_terminal(Some(flags.tty));
    if let Some(cwd) = &flags.cwd {
        process.set_cwd(cwd.into());
    }
    let mut env = process.env().clone().unwrap_or_default();
    env.extend(flags.env.iter().cloned());
    process.set_env(Some(env));
    let mut user = process.user().clone();
    if let Some((uid, gid)) = flags.user {
        user.set_uid(uid);
        user.set_gid(gid.unwrap_or(0));
    }
    if !flags.additional_gids.is_empty() {
        user.set_additional_gids(Some(flags.additional_gids.clone()));
    }
    process.set_user(user);
    if flags.no_new_privs {
        process.set_no_new_privileges(Some(true));
    }
    if !flags.caps.is_empty() {
        if let Some(mut caps) = process.capabilities().clone() {
            let add = |set: &Option<oci_spec::runtime::Capabilities>| {
                let mut set = set.clone().unwrap_or_default();
                set.extend(flags.caps.iter().copied());
                Some(set)
            };
            caps.set_bounding(add(caps.bounding()));
            caps.set_effective(add(caps.effective()));
            caps.set_permitted(add(caps.permitted()));
            process.set_capabilities(Some(caps));
        }
    }
    Ok(process)
}
