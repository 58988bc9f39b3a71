"""deploy/ansible/site.yml against a throwaway Debian root file system (a
debootstrap chroot, through Ansible's community.general.chroot connection):
the agent binary, the device bundle from `gopigo provision`, the `gopigo`
user and groups, the hardened unit and its enablement. See tests/ansible/."""

import os
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from conftest import GOPIGO

ROOT = Path(__file__).resolve().parents[2]
ROOTFS_TAR = Path(os.environ.get("GOPIGO_TEST_ROOTFS",
                                  Path.home() / ".cache" / "gopigo" / "bookworm-minbase.tar"))


def _missing():
    if os.geteuid() != 0:
        return "needs root (chroot)"
    if shutil.which("ansible-playbook") is None:
        return "needs ansible (pip install ansible)"
    r = subprocess.run(["ansible-doc", "-t", "connection", "-l"], capture_output=True, text=True)
    if "community.general.chroot" not in r.stdout:
        return "needs the community.general collection (pip install ansible)"
    if not ROOTFS_TAR.is_file() and shutil.which("debootstrap") is None:
        return "needs debootstrap or a prepared root fs (tests/ansible/make-rootfs.sh)"
    return None


_MISSING = _missing()
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=str(_MISSING))


def passwd_entry(rootfs, name, path="etc/passwd"):
    for line in (rootfs / path).read_text().splitlines():
        parts = line.split(":")
        if parts[0] == name:
            return parts
    return None


def group_members(rootfs, group):
    e = passwd_entry(rootfs, group, "etc/group")
    return e[3].split(",") if e and e[3] else []


@pytest.fixture(scope="module")
def rootfs_tar():
    if not ROOTFS_TAR.is_file():
        r = subprocess.run(["bash", str(ROOT / "tests" / "ansible" / "make-rootfs.sh"), str(ROOTFS_TAR)],
                           capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stdout + r.stderr
    return ROOTFS_TAR


def playbook(inventory, *extra, home=None):
    env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_NOCOLOR="1",
               ANSIBLE_RETRY_FILES_ENABLED="False", ANSIBLE_LOCALHOST_WARNING="False")
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.run(["ansible-playbook", "-i", str(inventory), str(ROOT / "deploy" / "ansible" / "site.yml"),
                           *extra], capture_output=True, text=True, env=env, timeout=600)


def chroot_robot(core, tmp_path, rootfs_tar):
    """A robot for the playbook: a fresh Debian root file system reached
    through Ansible's chroot connection, and robot1's bundle provisioned
    where run-on-aws.md puts it (~/gopigo-bundles/<host>, the playbook's
    default) with paths as they will be on the robot. Returns (root, the
    home holding the bundles, the inventory file)."""
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    assert subprocess.run(["tar", "-C", str(rootfs), "-xf", str(rootfs_tar)]).returncode == 0
    home = tmp_path / "home"
    r = subprocess.run([GOPIGO, "provision", "--thing", "robot1", "--data-dir", str(core.data_dir),
                        "--out", str(home / "gopigo-bundles" / "robot1"), "--install-dir", "/etc/gopigo"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        "[robots]\n"
        f"robot1 ansible_host={rootfs} ansible_connection=community.general.chroot "
        "ansible_python_interpreter=/usr/bin/python3\n")
    return rootfs, home, inventory


def test_playbook_installs_agent_into_chroot(core, tmp_path, rootfs_tar):
    rootfs, home, inventory = chroot_robot(core, tmp_path, rootfs_tar)
    bundles = home / "gopigo-bundles"
    # the documented form: an absolute gopigo_binary, the default bundle dir
    args = ("-e", f"gopigo_binary={Path(GOPIGO).resolve()}", "-e", "gopigo_start=false")
    # what the vendor's installer leaves in the pi user's home: its robot
    # constants and its list of 16-tick serial numbers
    vendor_home = rootfs / "home/pi"
    vendor_home.mkdir(parents=True, exist_ok=True)
    (vendor_home / ".gpg3_config.json").write_text(
        '{"wheel-diameter": 66.5, "wheel-base-width": 117, "ticks": 16, "motor_gear_ratio": 120}')
    (vendor_home / ".gpg3_list_of_serial_numbers.pkl").write_text(
        "(lp0\nS'00A513C35152415447202020FF192B1C'\np1\na.")
    r = playbook(inventory, *args, home=home)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "failed=0" in r.stdout

    # user and groups, as the chroot's own files say
    user = passwd_entry(rootfs, "gopigo")
    assert user is not None and user[6] == "/usr/sbin/nologin", user
    assert int(user[2]) < 1000, "a system user"
    for g in ("spi", "i2c", "gpio", "video"):
        assert "gopigo" in group_members(rootfs, g), g
    uid = int(user[2])
    gid = int(passwd_entry(rootfs, "gopigo", "etc/group")[2])
    # binary: the service user's, in a folder it may write, so that an
    # over-the-air update can swap it; the PATH's gopigo links to it
    binary = rootfs / "var/lib/gopigo/bin/gopigo"
    st = binary.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o755, uid, gid)
    assert st.st_size == Path(GOPIGO).stat().st_size
    for d in ("var/lib/gopigo", "var/lib/gopigo/bin"):
        st = (rootfs / d).stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o755, uid, gid), d
    link = rootfs / "usr/local/bin/gopigo"
    assert link.is_symlink() and os.readlink(link) == "/var/lib/gopigo/bin/gopigo"
    # config dir and bundle, owners and modes
    conf = rootfs / "etc/gopigo"
    st = conf.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o750, 0, gid)
    key = (conf / "key.pem").stat()
    assert (stat.S_IMODE(key.st_mode), key.st_uid, key.st_gid) == (0o600, uid, gid)
    assert (conf / "key.pem").read_bytes() == (bundles / "robot1" / "key.pem").read_bytes()
    for f in ("cert.pem", "ca.pem"):
        assert stat.S_IMODE((conf / f).stat().st_mode) == 0o644
        assert (conf / f).read_bytes() == (bundles / "robot1" / f).read_bytes()
    toml = (conf / "robot.toml").read_text()
    assert stat.S_IMODE((conf / "robot.toml").stat().st_mode) == 0o640
    assert 'thing = "robot1"' in toml and 'key_file = "/etc/gopigo/key.pem"' in toml
    assert 'kind = "hardware"' in toml and 'source = "rpicam"' in toml
    # unit installed and enabled (the link `systemctl enable` makes)
    unit = rootfs / "etc/systemd/system/gopigo-agent.service"
    assert unit.read_text() == (ROOT / "deploy/systemd/gopigo-agent.service").read_text()
    link = rootfs / "etc/systemd/system/multi-user.target.wants/gopigo-agent.service"
    assert link.is_symlink() and os.readlink(link) == "/etc/systemd/system/gopigo-agent.service"
    # not a Pi: the boot config was left alone
    assert not (rootfs / "boot/firmware/config.txt").exists()
    assert "Start the agent" in r.stdout and "skipping" in r.stdout
    # the distance sensor's bus exists at every boot: i2c-dev is loaded
    assert "i2c-dev" in (rootfs / "etc/modules-load.d/gopigo.conf").read_text().split()
    # systemd gets .device units for the board and the sensor, and the unit
    # waits for them
    rules = (rootfs / "etc/udev/rules.d/60-gopigo.rules").read_text()
    assert 'KERNEL=="spidev0.1", TAG+="systemd"' in rules and 'KERNEL=="i2c-1", TAG+="systemd"' in rules
    unit_text = unit.read_text()
    assert "After=dev-spidev0.1.device dev-i2c\\x2d1.device" in unit_text
    # the unit runs that binary, from a path it may write under
    # ProtectSystem=strict (its StateDirectory), not the read-only /usr
    assert "ExecStart=/var/lib/gopigo/bin/gopigo agent " in unit_text
    assert "ProtectSystem=strict" in unit_text and "StateDirectory=gopigo" in unit_text
    assert "ReadWritePaths=-/var/lib/gopigo/bin" in unit_text
    # DeviceAllow names the drivers as /proc/devices does (spidev is "spi")
    assert "DeviceAllow=char-spi rw" in unit_text and "char-spidev" not in unit_text
    if shutil.which("systemd-analyze"):
        v = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
        bad = [ln for ln in (v.stdout + v.stderr).splitlines() if "is not executable" not in ln]
        assert not bad, bad
    # no vendor power service: the agent holds GPIO23 itself, answers the
    # power button, and polkit lets its user power the Pi off
    board = tomllib.loads(toml)["board"]
    assert board.get("hold_power_line", True) is True, board
    rule = rootfs / "etc/polkit-1/rules.d/50-gopigo-poweroff.rules"
    rule_text = rule.read_text()
    assert 'subject.user == "gopigo"' in rule_text, rule_text
    assert '"org.freedesktop.login1.power-off"' in rule_text, rule_text
    assert stat.S_IMODE(rule.stat().st_mode) == 0o644
    # the open-file limit the agent raises its soft limit to
    assert "LimitNOFILE=4096" in unit_text.splitlines()
    # the vendor's motor files are where the sandboxed agent can read them,
    # and ticks = "auto" (the default) is pointed at them
    for f in (".gpg3_config.json", ".gpg3_list_of_serial_numbers.pkl"):
        copied = conf / f
        assert copied.read_bytes() == (vendor_home / f).read_bytes(), f
        st = copied.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 0, gid), f
    assert board["vendor_config"] == "/etc/gopigo/.gpg3_config.json", board
    assert "ticks" not in board or board["ticks"] == "auto", board

    # a second run changes nothing
    r = playbook(inventory, *args, home=home)
    assert r.returncode == 0, r.stdout[-3000:]
    assert "changed=0" in r.stdout, r.stdout[-3000:]

    # apt-get is a recording stand-in first on the chroot's PATH (no network)
    shim = rootfs / "usr/local/sbin/apt-get"
    shim.write_text("#!/bin/sh\necho \"$@\" >> /tmp/apt-get.log\n")
    shim.chmod(0o755)
    # on a Pi, SPI, I2C and the camera are switched on in config.txt
    boot = rootfs / "boot/firmware"
    boot.mkdir(parents=True)
    (boot / "config.txt").write_text("#dtparam=spi=on\ndtparam=audio=on\n")
    r = playbook(inventory, *args, "-e", "gopigo_is_pi=true", home=home)
    assert r.returncode == 0, r.stdout[-3000:]
    lines = (boot / "config.txt").read_text().splitlines()
    assert "dtparam=spi=on" in lines and "#dtparam=spi=on" not in lines
    assert "dtparam=i2c_arm=on" in lines and "camera_auto_detect=1" in lines
    assert "dtparam=audio=on" in lines
    assert "reboot the Pi" in r.stdout
    # on a Pi, a missing rpicam-apps (the camera's rpicam-vid) is installed
    assert (rootfs / "tmp/apt-get.log").read_text().split() == [
        "install", "-y", "--no-install-recommends", "rpicam-apps"]
    shim.unlink()

    # the vendor's gopigo3_power service holds GPIO23: the agent is told to
    # leave the line alone (it can be requested once), and the config parses
    vendor_unit = rootfs / "lib/systemd/system/gopigo3_power.service"
    vendor_unit.parent.mkdir(parents=True, exist_ok=True)
    vendor_unit.write_text("[Service]\nExecStart=/usr/bin/python3 /opt/gopigo3_power.py\n")
    r = playbook(inventory, *args, home=home)
    assert r.returncode == 0, r.stdout[-3000:]
    shared = tomllib.loads((conf / "robot.toml").read_text())
    assert shared["board"]["hold_power_line"] is False and shared["board"]["kind"] == "hardware"
    # the vendor's service shuts the Pi down on the button: no rule for the agent
    assert not rule.exists()
    vendor_unit.unlink()

    # CSR flow: the key was made on the robot; the playbook leaves its content
    # alone and only gives it to the service user
    robot_key = conf / "key.pem"
    robot_key.write_bytes(b"made on the robot\n")
    os.chown(robot_key, 0, 0)
    robot_key.chmod(0o644)
    keyless = tmp_path / "keyless"
    shutil.copytree(bundles / "robot1", keyless)
    (keyless / "key.pem").unlink()
    r = playbook(inventory, "-e", f"gopigo_binary={GOPIGO}", "-e", f"gopigo_bundle_dir={keyless}",
                 "-e", "gopigo_start=false", "-e", "gopigo_install_key=false")
    assert r.returncode == 0, r.stdout[-3000:]
    st = robot_key.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, uid, gid)
    assert robot_key.read_bytes() == b"made on the robot\n"

    # the relative form that once appeared in the docs is refused with the fix
    r = playbook(inventory, "-e", "gopigo_binary=target/aarch64-unknown-linux-gnu/release/gopigo",
                 "-e", "gopigo_start=false", home=home)
    assert r.returncode != 0, r.stdout[-3000:]
    assert "must be the absolute path" in r.stdout and '"$PWD/target/' in r.stdout, r.stdout[-3000:]


VISION = Path(os.environ.get("GOPIGO_CACHE", Path.home() / ".cache" / "gopigo")) / "vision"


def test_playbook_installs_detection_where_robot_toml_points(core, tmp_path, rootfs_tar):
    """On-robot detection: the playbook installs ONNX Runtime and the model
    that scripts/build-pi.sh stages beside the binary (`vision/`), and the
    [detect] table of robot.toml points at them. The int8 model is optional:
    installed when staged, taken off the robot when not (the agent then runs
    fp32), and its absence never fails the play."""
    runtime = VISION / "lib" / "libonnxruntime.so"
    model = VISION / "model" / "yolov3-tiny.onnx"
    if not (runtime.exists() and model.is_file()):
        pytest.skip("run crates/vision/setup.sh first (model and ONNX Runtime)")
    rootfs, home, inventory = chroot_robot(core, tmp_path, rootfs_tar)
    # a build folder as scripts/build-pi.sh leaves it: the binary, and beside
    # it vision/lib/libonnxruntime.so -> libonnxruntime.so.X and vision/model/
    stage = tmp_path / "build"
    (stage / "vision" / "lib").mkdir(parents=True)
    (stage / "vision" / "model").mkdir()
    shutil.copy(GOPIGO, stage / "gopigo")
    real = runtime.resolve()
    shutil.copy(real, stage / "vision" / "lib" / real.name)
    (stage / "vision" / "lib" / "libonnxruntime.so").symlink_to(real.name)
    shutil.copy(model, stage / "vision" / "model" / "yolov3-tiny.onnx")
    # the int8 model as build-pi.sh stages it from this machine's cache; Ansible
    # only copies bytes, so without setup.sh's int8 model any file stands in
    int8 = stage / "vision" / "model" / "yolov3-tiny.int8.onnx"
    int8_src = VISION / "model" / "yolov3-tiny.int8.onnx"
    if int8_src.is_file():
        shutil.copy(int8_src, int8)
    else:
        int8.write_bytes(b"stands in for yolov3-tiny.int8.onnx\n")

    # detection asked for, without the files: refused with the fix
    r = playbook(inventory, "-e", f"gopigo_binary={Path(GOPIGO).resolve()}", "-e", "gopigo_start=false",
                 "-e", "gopigo_detect=true", home=home)
    assert r.returncode != 0 and "run scripts/build-pi.sh" in r.stdout, r.stdout[-3000:]

    args = ("-e", f"gopigo_binary={stage / 'gopigo'}", "-e", "gopigo_start=false", "-e", "gopigo_detect=true")
    r = playbook(inventory, *args, home=home)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    conf = tomllib.loads((rootfs / "etc/gopigo/robot.toml").read_text())
    detect = conf["detect"]
    assert detect["enabled"] is True, detect
    # the files are where robot.toml points, whole, readable by the service user
    model_at = rootfs / detect["model_dir"].lstrip("/") / "yolov3-tiny.onnx"
    int8_at = model_at.with_name("yolov3-tiny.int8.onnx")
    runtime_at = rootfs / detect["runtime"].lstrip("/")
    assert model_at.read_bytes() == model.read_bytes()
    assert int8_at.read_bytes() == int8.read_bytes()
    assert "precision" not in detect, detect  # left out: int8, as its file is there
    assert runtime_at.read_bytes() == real.read_bytes() and not runtime_at.is_symlink()
    for f in (model_at, int8_at, runtime_at):
        st = f.stat()
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (0o644, 0), f

    # a second run changes nothing; without gopigo_detect the table says off
    r = playbook(inventory, *args, home=home)
    assert r.returncode == 0 and "changed=0" in r.stdout, r.stdout[-3000:]
    r = playbook(inventory, *args[:4], home=home)
    assert r.returncode == 0, r.stdout[-3000:]
    assert tomllib.loads((rootfs / "etc/gopigo/robot.toml").read_text())["detect"]["enabled"] is False

    # a build without the int8 model: the play succeeds, the robot keeps the
    # fp32 model and loses the old int8 one, so its agent runs fp32
    int8.unlink()
    r = playbook(inventory, *args, home=home)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert model_at.read_bytes() == model.read_bytes()
    assert not int8_at.exists()
