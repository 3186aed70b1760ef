#!/usr/bin/env python3
# tests/integration/test_install.py: `make install` puts the programs, their man pages, the hardened systemd unit and the example configurations in place, and each installed piece works.
"""make install DESTDIR=... into a temporary tree, then checks what a
packager and an operator would: every installed man page renders without a
warning and lists every option its program's --help prints; the systemd
unit checks the config before it starts and before each reload, reloads by
SIGHUP and carries its hardening options; the installed examples load."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

import harness

BUILD = harness.BUILDDIR


class Installed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dest = tempfile.mkdtemp(prefix="sy-install-")
        # The prefix configure gave the build (the default: /usr/local).
        env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
        r = subprocess.run(["make", "-s", "install", "DESTDIR=" + cls.dest], cwd=BUILD,
                           capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise AssertionError("make install failed: " + r.stdout + r.stderr)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dest, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.dest, *parts)

    def test_programs_man_pages_unit_and_examples_are_installed(self):
        for p in ("usr/local/bin/switchyard", "usr/local/bin/sy-sim", "usr/local/bin/sy-load"):
            self.assertTrue(os.access(self.path(p), os.X_OK), p)
        for p in ("usr/local/share/man/man8/switchyard.8", "usr/local/share/man/man1/sy-sim.1",
                  "usr/local/share/man/man1/sy-load.1", "usr/local/lib/systemd/system/switchyard.service",
                  "usr/local/share/doc/switchyard/examples/switchyard.json",
                  "usr/local/share/doc/switchyard/examples/tenants.json"):
            self.assertTrue(os.path.isfile(self.path(p)), p)

    def test_each_man_page_renders_cleanly_and_lists_every_option_of_its_help(self):
        pages = {"switchyard": "usr/local/share/man/man8/switchyard.8",
                 "sy-sim": "usr/local/share/man/man1/sy-sim.1", "sy-load": "usr/local/share/man/man1/sy-load.1"}
        for prog, page in pages.items():
            r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", self.path(page)],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stderr, "", "%s: groff warns: %s" % (page, r.stderr))
            text = re.sub(r".\x08", "", r.stdout)
            self.assertIn("NAME", text)
            self.assertNotIn("@", re.sub(r"\S+@\S+", "", text.split("SEE ALSO")[0]).replace(
                "@system-service", ""), page)
            out = subprocess.run([self.path("usr/local/bin", prog), "--help"], capture_output=True,
                                 text=True)
            opts = set(re.findall(r"^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)", out.stdout + out.stderr,
                                  re.M))
            self.assertGreater(len(opts), 5, prog)
            for o in opts:
                self.assertRegex(text, r"(?m)^\s+(-\w, )?" + re.escape(o) + r"\b", (page, o))

    def test_the_unit_checks_the_config_before_start_and_reload_and_is_hardened(self):
        with open(self.path("usr/local/lib/systemd/system/switchyard.service")) as f:
            unit = f.read()
        lines = [l.split("=", 1) for l in unit.splitlines() if "=" in l and not l.startswith("#")]
        keys = {}
        for k, v in lines:
            keys.setdefault(k, []).append(v)
        check = "/usr/local/bin/switchyard -t -c /usr/local/etc/switchyard/switchyard.json"
        self.assertEqual(keys["ExecStartPre"], [check])
        self.assertEqual(keys["ExecStart"], ["/usr/local/bin/switchyard -c /usr/local/etc/switchyard/switchyard.json"])
        # The check first: a file that does not load stops the reload there.
        self.assertEqual(keys["ExecReload"], [check, "/bin/kill -HUP $MAINPID"])
        for k, v in (("DynamicUser", "yes"), ("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                     ("PrivateTmp", "yes"), ("KillSignal", "SIGTERM")):
            self.assertEqual(keys.get(k), [v], k)
        # The check the unit runs tells a bad file from a good one.
        examples = self.path("usr/local/share/doc/switchyard/examples")
        bin_ = self.path("usr/local/bin/switchyard")
        # (aliases.json needs a hosted provider's address and key.)
        for name in ("switchyard.json", "lab.json", "tenants.json"):
            r = subprocess.run([bin_, "-t", "-c", os.path.join(examples, name)],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, (name, r.stdout, r.stderr))
        bad = os.path.join(self.dest, "bad.json")
        with open(bad, "w") as f:
            f.write('{"routes": [{"name": "x", "models": []}]')
        self.assertEqual(subprocess.run([bin_, "-t", "-c", bad], capture_output=True).returncode, 1)


if __name__ == "__main__":
    harness.main()
