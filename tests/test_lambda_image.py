"""The image's contents and roles, checked without Docker (scripts/image_check.py builds and runs them)."""

import importlib.util
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# Key material as the repo writes it: raw private keys, PEM private keys, JWK private members, a literal SECRET_KEY.
KEY_MATERIAL = re.compile(r"fromhex\(|PRIVATE KEY-----|\"d\"\s*:\s*\"|(?<![A-Z_])SECRET_KEY\s*=\s*\"[^\"$]")


def image_check():
    spec = importlib.util.spec_from_file_location("image_check", REPO / "scripts/image_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_build_context_holds_no_tests_demo_benchmarks_or_keys():
    files = image_check().context_files()
    assert "scorer_fast/lambda_handler.py" in files and "manage.py" in files and "gunicorn.conf.py" in files
    top_folders = {path.split("/")[0] for path in files if "/" in path}
    assert top_folders <= {"scorer_fast", "settings", "requirements"}, top_folders
    with_keys = [path for path in files if KEY_MATERIAL.search((REPO / path).read_text(errors="replace"))]
    assert with_keys == []


def test_the_key_pattern_finds_the_test_and_demo_keys():
    """The check above can fail: the files it keeps out do hold key material."""
    assert KEY_MATERIAL.search((REPO / "tests/credentials.py").read_text())
    assert KEY_MATERIAL.search((REPO / "settings/test.py").read_text())
    demo_keys = [REPO / "scorer_fast/demo_issuer.py", *(REPO / "demo").rglob("*.py")]
    assert any(KEY_MATERIAL.search(path.read_text()) for path in demo_keys if path.exists())


def test_one_image_two_roles_production_by_default():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "SCORER_ENV=production" in dockerfile
    assert dockerfile.rstrip().endswith(
        'CMD ["gunicorn", "--config", "gunicorn.conf.py", "scorer_fast.wsgi:application"]'
    )
    deploy = (REPO / "docs/deploy.md").read_text()
    assert '["python", "-m", "awslambdaric"]' in deploy and '["scorer_fast.lambda_handler.handler"]' in deploy
    requirements = (REPO / "requirements/base.txt").read_text()
    assert re.search(r"^awslambdaric==", requirements, re.M) and re.search(r"^apig-wsgi==", requirements, re.M)
