.PHONY: help serve test lint fmt bench
help: ## list targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'
serve: ## serve the API with demo data (embedded PostgreSQL unless DATABASE_URL is set)
	scripts/serve
test: ## lint and run the whole test suite
	scripts/test
lint: ## ruff check and format check
	.venv/bin/ruff check . && .venv/bin/ruff format --check .
fmt: ## format and fix imports
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .
bench: ## benchmarks (see bench/README.md)
	.venv/bin/python bench/run.py
