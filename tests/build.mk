# tests/: the list of unit programs for tests/run-all, and the shared
# in-container test helper.
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

all: $(B)/tests/unit-tests.list
$(B)/tests/unit-tests.list: FORCE
	@mkdir -p $(dir $@)
	@printf '%s\n' $(abspath $(UNIT_TESTS)) > $@.tmp && \
	 (cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@)
.PHONY: FORCE
FORCE:
