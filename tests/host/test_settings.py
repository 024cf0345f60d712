# tests/host/test_settings.py: one precedence for every CLI setting (host_server.config):
# flag > environment variable > config file > default, in the shared reader and in the
# two places that used to disagree (B's CS token, device provision's CS URL).
import argparse

from host_server.server_b import config as b_config
from host_server.config import load_section, pick


def test_pick_flag_then_environment_then_file_then_default(monkeypatch):
    section = {"cs_url": "http://file:1"}
    monkeypatch.setenv("X_URL", "http://env:2")
    assert pick(argparse.Namespace(cs_url="http://flag:3"), section, "cs_url",
                env="X_URL") == "http://flag:3"
    assert pick(argparse.Namespace(), section, "cs_url", env="X_URL") == "http://env:2"
    monkeypatch.setenv("X_URL", "")                     # empty counts as unset
    assert pick(argparse.Namespace(), section, "cs_url", env="X_URL") == "http://file:1"
    assert pick(argparse.Namespace(), {}, "cs_url", "http://default:4",
                env="X_URL") == "http://default:4"


def _b_flags(tmp_path, *extra):
    parser = argparse.ArgumentParser()
    b_config.add_flags(parser)
    (tmp_path / "file.token").write_text("f" * 43 + "\n")
    cfg = tmp_path / "b.toml"
    cfg.write_text('[server]\nca_cert = "ca.crt"\nkey_dir = "keys"\n'
                   'cs_token_file = "file.token"\n')
    assert load_section(str(cfg), "server")["cs_token_file"] == "file.token"
    return b_config.from_sources(parser.parse_args(["--config", str(cfg), *extra]))


def test_b_cs_token_environment_beats_the_config_file(tmp_path, monkeypatch):
    monkeypatch.delenv("AIRSHAKE_CS_TOKEN", raising=False)
    assert _b_flags(tmp_path).cs_token == "f" * 43
    monkeypatch.setenv("AIRSHAKE_CS_TOKEN", "e" * 43)
    assert _b_flags(tmp_path).cs_token == "e" * 43
    (tmp_path / "flag.token").write_text("g" * 43 + "\n")
    assert _b_flags(tmp_path, "--cs-token-file", str(tmp_path / "flag.token")).cs_token \
        == "g" * 43
