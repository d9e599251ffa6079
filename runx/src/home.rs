//! `HOME` as runc gives it: when config.json's env has none, the home folder that the
//! container's own /etc/passwd names for the process's uid, or `/`.

use std::io::Read;
use std::path::Path;

use crate::confine;

/// The most of /etc/passwd runx reads: an image's passwd is small; a huge one is not worth reading.
const MAX_PASSWD_BYTES: u64 = 1 << 20;

/// Adds `HOME=...` to `env` unless it has one.
pub fn add_home(env: &mut Vec<String>, rootfs: &Path, uid: u32) {
    if env.iter().any(|e| e.starts_with("HOME=")) {
        return;
    }
    let home = passwd_home(rootfs, uid).unwrap_or_else(|| "/".to_owned());
    env.push(format!("HOME={home}"));
}

/// The home of `uid` in the rootfs's /etc/passwd, opened inside the rootfs only.
fn passwd_home(rootfs: &Path, uid: u32) -> Option<String> {
    let file = confine::regular_file(rootfs, "/etc/passwd", "passwd").ok()?;
    let mut text = String::new();
    file.take(MAX_PASSWD_BYTES).read_to_string(&mut text).ok()?;
    home_in(&text, uid)
}

/// `name:password:uid:gid:gecos:home:shell`: the home of the first entry with `uid`.
fn home_in(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 7 && fields[2].parse() == Ok(uid) && !fields[5].is_empty()).then(|| fields[5].to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_comes_from_the_image_s_passwd_or_is_the_root() {
        let dir = std::env::temp_dir().join(format!("runx-home-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
            .unwrap();
        let home = |uid, env: &[&str]| {
            let mut env: Vec<String> = env.iter().map(|e| e.to_string()).collect();
            add_home(&mut env, &dir, uid);
            env
        };
        assert_eq!(home(0, &["PATH=/bin"]), ["PATH=/bin", "HOME=/root"]);
        assert_eq!(home(1000, &[]), ["HOME=/home/app"]);
        assert_eq!(home(4242, &[]), ["HOME=/"]);
        assert_eq!(home(0, &["HOME=/data"]), ["HOME=/data"]);
        std::fs::remove_file(dir.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("etc/passwd")).unwrap();
        assert_eq!(home(0, &[]), ["HOME=/"], "a passwd outside the rootfs is not read");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
