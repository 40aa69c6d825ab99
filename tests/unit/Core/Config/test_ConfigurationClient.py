"""gConfig getters, local files, overrides and precedence."""

from __future__ import annotations

from diraccfg import CFG

from dirac.Core.Config import PathFinder, gConfig
from dirac.Core.Config.ConfigurationClient import castValue, toList

LOCAL = """
DIRAC
{
  Port = 9443
  Debug = yes
  Ratio = 0.5
  Hosts = a, b ,, c
}
Systems
{
  WorkloadManagement
  {
    URLs
    {
      JobManager = https://h1/WorkloadManagement/JobManager, https://h2/x
    }
  }
}
"""


def test_cast_follows_the_type_of_the_default():
    assert castValue("12", 0) == 12
    assert castValue("yes", False) is True
    assert castValue("Off", True) is False
    assert castValue("1.5", 0.0) == 1.5
    assert castValue("a, b", []) == ["a", "b"]
    assert toList(" x ,, y ") == ["x", "y"]


def test_getters_on_a_local_file(tmp_path):
    cfgFile = tmp_path / "dirac.cfg"
    cfgFile.write_text(LOCAL)
    gConfig.initialize(cfgFiles=[cfgFile], fetchRemote=False)
    assert gConfig.getValue("/DIRAC/Port", 8443) == 9443
    assert gConfig.getValue("/DIRAC/Debug", False) is True
    assert gConfig.getValue("/DIRAC/Ratio", 1.0) == 0.5
    assert gConfig.getValue("/DIRAC/Hosts", []) == ["a", "b", "c"]
    assert gConfig.getValue("/DIRAC/Missing", "dflt") == "dflt"
    assert gConfig.getValue("/DIRAC", "dflt") == "dflt"  # a section is not an option
    assert not gConfig.getOption("/DIRAC/Missing")["OK"]
    assert gConfig.getOption("/DIRAC/Port", 1)["Value"] == 9443
    assert gConfig.getSections("/Systems")["Value"] == ["WorkloadManagement"]
    assert gConfig.getOptionsDict("/DIRAC")["Value"]["Port"] == "9443"
    assert not gConfig.getSections("/Nowhere")["OK"]


def test_invalid_value_falls_back_to_default(tmp_path):
    gConfig.initialize(options={"/DIRAC/Port": "not-a-number"}, fetchRemote=False)
    assert gConfig.getValue("/DIRAC/Port", 8443) == 8443


def test_overrides_win_over_local_files_which_win_over_the_central_cs(tmp_path):
    cfgFile = tmp_path / "dirac.cfg"
    cfgFile.write_text(LOCAL)
    gConfig.initialize(cfgFiles=[cfgFile], options={"/DIRAC/Debug": "no"}, fetchRemote=False)
    gConfig.data.setRemote(CFG().loadFromBuffer("DIRAC\n{\n  Port = 1\n  Central = c\n  Debug = yes\n}\n"))
    assert gConfig.getValue("/DIRAC/Port", 0) == 9443
    assert gConfig.getValue("/DIRAC/Central", "") == "c"
    assert gConfig.getValue("/DIRAC/Debug", True) is False


def test_service_urls_resolve_from_the_systems_section(tmp_path):
    cfgFile = tmp_path / "dirac.cfg"
    cfgFile.write_text(LOCAL)
    gConfig.initialize(cfgFiles=[cfgFile], fetchRemote=False)
    assert PathFinder.getServiceURLs("WorkloadManagement/JobManager") == [
        "https://h1/WorkloadManagement/JobManager", "https://h2/x"]
    assert PathFinder.getServiceURLs("https://direct/X/Y") == ["https://direct/X/Y"]
    assert PathFinder.getAgentSection("WorkloadManagementSystem/SiteDirector") == \
        "/Systems/WorkloadManagement/Agents/SiteDirector"


def test_diracsysconfig_is_the_default_local_file(tmp_path, monkeypatch):
    cfgFile = tmp_path / "env.cfg"
    cfgFile.write_text("DIRAC\n{\n  FromEnv = 1\n}\n")
    monkeypatch.setenv("DIRACSYSCONFIG", str(cfgFile))
    assert gConfig.getValue("/DIRAC/FromEnv", 0) == 1


def test_threads_reading_first_wait_for_the_central_configuration(tmp_path, monkeypatch):
    """While one thread fetches the CS at first use, another reading at the same time sees the result."""
    import threading
    import time

    from dirac.Core.Config import Refresher

    def slowStart(self, background: bool = True) -> None:
        time.sleep(0.5)  # a Configuration Server answering slowly
        self.config.data.setRemote(CFG().loadFromBuffer("Systems\n{\n  Test\n  {\n    Option = central\n  }\n}\n"))

    monkeypatch.setattr(Refresher.Refresher, "start", slowStart)
    local = tmp_path / "dirac.cfg"
    local.write_text("DIRAC\n{\n  Configuration\n  {\n    Servers = https://cs.invalid:9135/Configuration/Server\n"
                     "  }\n}\n")
    monkeypatch.setenv("DIRACSYSCONFIG", str(local))
    gConfig.reset()
    seen = []
    first = threading.Thread(target=lambda: seen.append(gConfig.getValue("/Systems/Test/Option", "")))
    first.start()
    time.sleep(0.1)  # the first thread is now fetching
    seen.append(gConfig.getValue("/Systems/Test/Option", ""))
    first.join()
    assert seen == ["central", "central"]
