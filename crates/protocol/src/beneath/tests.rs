//! Every rule of the module, through openat2 and through the walk.

use super::*;
use rustix::fs::Mode;
use std::fs::File;
use std::os::unix::fs::symlink;

fn setup() -> (tempfile::TempDir, Dir) {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("root/a/b")).unwrap();
    std::fs::write(t.path().join("root/a/b/f.txt"), "hello").unwrap();
    std::fs::write(t.path().join("secret"), "SECRET").unwrap();
    let d = Dir::open(t.path().join("root")).unwrap();
    (t, d)
}

/// Runs `f` with openat2 and with the walk (the fallback for kernels without openat2).
fn both(f: impl Fn(&Dir, &Path)) {
    for walk in [false, true] {
        let (t, mut d) = setup();
        d.walk = walk;
        f(&d, t.path());
    }
}

#[test]
fn reads_a_plain_file() {
    both(|d, _| {
        assert_eq!(d.read("a/b/f.txt", 100).unwrap(), b"hello");
        assert_eq!(d.read("./a//b/./f.txt", 100).unwrap(), b"hello");
    });
}

#[test]
fn refuses_a_link_at_every_level() {
    both(|d, t| {
        // last component, to a file outside
        symlink(t.join("secret"), t.join("root/a/b/out")).unwrap();
        assert!(matches!(d.read("a/b/out", 100), Err(Error::Link { .. })));
        // last component, to a file inside
        symlink("f.txt", t.join("root/a/b/in")).unwrap();
        assert!(matches!(d.read("a/b/in", 100), Err(Error::Link { .. })));
        // middle component
        symlink(t.join("root/a/b"), t.join("root/a/lb")).unwrap();
        assert!(matches!(d.read("a/lb/f.txt", 100), Err(Error::Link { .. })));
        // first component
        symlink(t.join("root/a"), t.join("root/la")).unwrap();
        assert!(matches!(d.read("la/b/f.txt", 100), Err(Error::Link { .. })));
        assert!(matches!(d.open_dir("la"), Err(Error::Link { .. })));
        assert!(matches!(d.open_dir("la/b"), Err(Error::Link { .. })));
        // dangling
        symlink(t.join("nowhere"), t.join("root/dang")).unwrap();
        assert!(matches!(d.read("dang", 100), Err(Error::Link { .. })));
        assert!(matches!(
            d.write_file("dang", 0o644),
            Err(Error::Link { .. })
        ));
        assert!(!t.join("nowhere").exists());
        assert!(d.create_new("dang", 0o644).is_err());
        assert!(!t.join("nowhere").exists());
        assert!(matches!(
            d.create_dir_all("dang/x", 0o755),
            Err(Error::Link { .. })
        ));
        assert!(!t.join("nowhere").exists());
    });
}

#[test]
fn refuses_dotdot_and_absolute() {
    both(|d, t| {
        assert!(matches!(
            d.read("../secret", 100),
            Err(Error::Escapes { .. })
        ));
        assert!(matches!(
            d.read("a/../../secret", 100),
            Err(Error::Escapes { .. })
        ));
        assert!(matches!(
            d.read("a/../a/b/f.txt", 100),
            Err(Error::Escapes { .. })
        ));
        let abs = t.join("secret");
        assert!(matches!(d.read(&abs, 100), Err(Error::Escapes { .. })));
        assert!(matches!(d.read("", 100), Err(Error::Escapes { .. })));
        assert!(matches!(d.remove_all(".."), Err(Error::Escapes { .. })));
    });
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    both(|d, t| {
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            t.join("root/fifo"),
            Mode::from_raw_mode(0o644),
        )
        .unwrap();
        assert!(matches!(
            d.read("fifo", 100),
            Err(Error::NotRegular { kind: "FIFO", .. })
        ));
        assert!(matches!(
            d.write_file("fifo", 0o644),
            Err(Error::NotRegular { .. })
        ));
        assert!(matches!(d.read("a", 100), Err(Error::NotRegular { .. })));
    });
}

#[test]
fn a_link_to_dev_zero_is_refused() {
    both(|d, t| {
        symlink("/dev/zero", t.join("root/zero")).unwrap();
        assert!(matches!(d.read("zero", 100), Err(Error::Link { .. })));
    });
}

#[test]
fn a_big_sparse_file_is_refused_before_reading() {
    both(|d, t| {
        let f = File::create(t.join("root/big")).unwrap();
        f.set_len(300 * 1024 * 1024).unwrap();
        assert!(matches!(d.read("big", 1024), Err(Error::TooLarge { .. })));
        assert!(matches!(
            d.open_file("big", 1024),
            Err(Error::TooLarge { .. })
        ));
    });
}

#[test]
fn growth_after_open_is_caught_while_reading() {
    let (t, d) = setup();
    let o = d.open_file("a/b/f.txt", 10).unwrap();
    std::fs::write(t.path().join("root/a/b/f.txt"), "x".repeat(1000)).unwrap();
    assert!(matches!(
        o.read_capped(Path::new("f"), 10),
        Err(Error::TooLarge { .. })
    ));
    // Reading a stream that never ends stops at cap + 1.
    let r = read_capped(std::io::repeat(0), Path::new("zero"), 4096, 0);
    assert!(matches!(r, Err(Error::TooLarge { .. })));
}

#[test]
fn a_dir_swapped_for_a_link_after_open_stays_the_old_dir() {
    both(|d, t| {
        let sub = d.open_dir("a/b").unwrap();
        std::fs::rename(t.join("root/a/b"), t.join("root/moved")).unwrap();
        symlink(t, t.join("root/a/b")).unwrap();
        // The handle still names the moved folder, never the link's target.
        assert_eq!(sub.read("f.txt", 100).unwrap(), b"hello");
        assert!(matches!(sub.read("secret", 100), Err(Error::Io { .. })));
        assert!(matches!(d.open_dir("a/b"), Err(Error::Link { .. })));
    });
}

#[test]
fn create_new_is_exclusive() {
    both(|d, t| {
        use std::io::Write;
        let dir = d.create_dir_all("inbox/1", 0o755).unwrap();
        dir.create_new("x", 0o644)
            .unwrap()
            .write_all(b"one")
            .unwrap();
        let e = dir.create_new("x", 0o644).unwrap_err();
        assert!(
            matches!(&e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists)
        );
        symlink(t.join("secret"), t.join("root/inbox/1/y")).unwrap();
        assert!(dir.create_new("y", 0o644).is_err());
        assert_eq!(std::fs::read(t.join("secret")).unwrap(), b"SECRET");
    });
}

#[test]
fn write_file_replaces_a_regular_file_only() {
    both(|d, t| {
        use std::io::Write;
        d.write_file("a/b/f.txt", 0o644)
            .unwrap()
            .write_all(b"new")
            .unwrap();
        assert_eq!(d.read("a/b/f.txt", 100).unwrap(), b"new");
        symlink(t.join("secret"), t.join("root/s")).unwrap();
        assert!(matches!(d.write_file("s", 0o644), Err(Error::Link { .. })));
        assert_eq!(std::fs::read(t.join("secret")).unwrap(), b"SECRET");
    });
}

#[test]
fn remove_all_never_follows() {
    both(|d, t| {
        std::fs::create_dir_all(t.join("victim/deep")).unwrap();
        std::fs::write(t.join("victim/deep/keep"), "k").unwrap();
        // outbox is a link: refused, the target untouched
        symlink(t.join("victim"), t.join("root/outbox")).unwrap();
        assert!(matches!(
            d.remove_all("outbox/deep"),
            Err(Error::Link { .. })
        ));
        // the named thing itself is a link: the link goes, not its target
        std::fs::create_dir_all(t.join("root/box")).unwrap();
        symlink(t.join("victim"), t.join("root/box/id")).unwrap();
        d.remove_all("box/id").unwrap();
        assert!(!t.join("root/box/id").exists());
        // links inside a removed tree go themselves
        std::fs::create_dir_all(t.join("root/tree/sub")).unwrap();
        symlink(t.join("victim"), t.join("root/tree/sub/l")).unwrap();
        symlink(t.join("victim/deep/keep"), t.join("root/tree/f")).unwrap();
        d.remove_all("tree").unwrap();
        assert!(!t.join("root/tree").exists());
        assert!(t.join("victim/deep/keep").exists());
        // missing is fine
        d.remove_all("tree").unwrap();
        d.remove_all("nope/nope").unwrap();
    });
}

#[test]
fn kind_does_not_follow() {
    both(|d, t| {
        symlink(t.join("secret"), t.join("root/l")).unwrap();
        assert_eq!(d.kind("l").unwrap(), Some(FileType::Symlink));
        assert_eq!(d.kind("a").unwrap(), Some(FileType::Directory));
        assert_eq!(d.kind("none").unwrap(), None);
        assert_eq!(d.kind("none/x").unwrap(), None);
    });
}

#[test]
fn chown_tree_walks_without_following() {
    use std::os::unix::fs::MetadataExt;
    // As root (CI), to an unused id; unprivileged, to one's own ids (which still proves
    // the walk and that links are neither followed nor descended).
    let root = std::fs::metadata("/proc/self").unwrap().uid() == 0;
    both(|d, t| {
        symlink(t, t.join("root/a/up")).unwrap();
        symlink(t.join("secret"), t.join("root/a/s")).unwrap();
        let me = std::fs::metadata(t).unwrap();
        let (uid, gid) = if root {
            (4242, 4343)
        } else {
            (me.uid(), me.gid())
        };
        d.chown_tree(uid, gid).unwrap();
        for p in ["root", "root/a", "root/a/b", "root/a/b/f.txt"] {
            let m = std::fs::symlink_metadata(t.join(p)).unwrap();
            assert_eq!((m.uid(), m.gid()), (uid, gid), "{p}");
        }
        let s = std::fs::metadata(t.join("secret")).unwrap();
        assert_eq!((s.uid(), s.gid()), (me.uid(), me.gid()));
        assert_eq!(std::fs::metadata(t).unwrap().uid(), me.uid());
    });
}
