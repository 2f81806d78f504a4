# services/echo: the example provider.
ECHO_PROVIDER := $(B)/libexec/scm-echo-provider
$(B)/services/echo/echo-provider.o: $(B)/gen/scm/echo-provider.h
$(ECHO_PROVIDER): $(B)/services/echo/echo-provider.o $(B)/gen/scm/echo-provider.o $(LIBSCM)
	@mkdir -p $(dir $@)
	$(LINK) -o $@ $^ $(JSONC_LIBS)
LIBEXEC += $(ECHO_PROVIDER)
