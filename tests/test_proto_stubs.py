"""The committed gRPC stubs must equal a fresh generation from the .proto subset."""

from pathlib import Path

from registry.containerd import generate


def test_generated_stubs_are_current(tmp_path: Path) -> None:
    fresh = generate.generate(tmp_path)
    committed = {
        str(p.relative_to(generate.GEN_DIR)): p.read_text()
        for p in generate.GEN_DIR.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert set(fresh) == set(committed), "run `make proto`: the stub file set changed"
    stale = [name for name, text in fresh.items() if committed[name] != text]
    assert not stale, f"run `make proto`: stale stubs {stale}"


def test_stubs_use_containerd_package_names() -> None:
    from registry.containerd.gen.containerd.services.content.v1 import content_pb2_grpc
    from registry.containerd.gen.runtime.v1 import api_pb2

    source = Path(content_pb2_grpc.__file__).read_text()
    assert "/containerd.services.content.v1.Content/Read" in source
    assert api_pb2.DESCRIPTOR.package == "runtime.v1"
