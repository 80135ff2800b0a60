# parkd — hand-written Makefile (pkg-config for every dependency).
#   make               build build/parkd and the tools
#   make check         -Werror build, unit + integration tests against real servers
#   make check-asan    the same under AddressSanitizer + UBSan (separate build dir)
#   make check-tsan    the threaded parts (HTTP thread vs the loop) under ThreadSanitizer
#   make ci            check + check-asan + check-tsan + fuzz smoke + unit-file checks + the .deb
#                      under systemd (what CI runs)
#   make bench         benchmarks (not part of check)
#   make demo          local broker + Redis + parkd + a replay of the Birmingham data
#   make web           the live map (npm ci in web/ when needed, esbuild) into build/web; needs node
#   make install PREFIX=/usr/local DESTDIR=
#   make deb           the Debian package into build/deb (dpkg-buildpackage in a scratch copy)
#   make check-systemd the .deb under a real systemd (nspawn container; skipped where none boots)

VERSION   := 0.1.0
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
SBINDIR   ?= $(PREFIX)/sbin
SYSCONFDIR ?= /etc
UNITDIR   ?= $(PREFIX)/lib/systemd/system
MANDIR    ?= $(PREFIX)/share/man
DATADIR   ?= $(PREFIX)/share
# The map page's files (http.listen serves them at /; PARKD_WEB_ROOT overrides at run time).
WEBDIR    ?= $(DATADIR)/parkd/web
DESTDIR   ?=

BUILD     ?= build
CC        ?= cc
PKGS      := libuv libmosquitto hiredis yaml-0.1 libsystemd jansson libmicrohttpd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS)) -lm

WARN      := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
OPT       ?= -O2 -g
CFLAGS    ?= $(OPT)
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -DPARKD_VERSION='"$(VERSION)"' -DPARKD_WEB_ROOT='"$(WEBDIR)"' $(WARN) $(EXTRA_CFLAGS) $(CFLAGS) $(PKG_CFLAGS) -Idaemon
ALL_LDFLAGS = $(EXTRA_LDFLAGS) $(LDFLAGS)

ifeq ($(SANITIZE),1)
EXTRA_CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
EXTRA_LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(SANITIZE),thread)
EXTRA_CFLAGS  += -fsanitize=thread -fno-omit-frame-pointer
EXTRA_LDFLAGS += -fsanitize=thread
endif
ifeq ($(WERROR),1)
EXTRA_CFLAGS += -Werror
endif

DAEMON_SRCS := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
DAEMON_OBJS := $(patsubst daemon/%.c,$(BUILD)/daemon/%.o,$(DAEMON_SRCS))
MAIN_OBJ    := $(BUILD)/daemon/main.o
LIB         := $(BUILD)/libparkd.a
UNIT_SRCS   := $(wildcard tests/unit/test_*.c)
UNIT_BINS   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
TOOL_SRCS   := $(wildcard scripts/*.c) $(wildcard tests/tools/*.c)
TOOL_BINS   := $(patsubst %.c,$(BUILD)/tools/%,$(notdir $(TOOL_SRCS)))

.PHONY: all clean check check-asan check-tsan ci unit bench demo fuzz install uninstall deps web deb check-systemd
SHIM        := $(BUILD)/tools/connect-eperm.so
all: $(BUILD)/parkd $(TOOL_BINS) $(SHIM)

# Test shim (LD_PRELOAD): no sanitizer, it is loaded into whatever the test runs.
$(SHIM): tests/shim/connect-eperm.c | $(BUILD)/tools
	$(CC) -std=c11 $(WARN) $(filter -Werror,$(EXTRA_CFLAGS)) -O2 -fPIC -shared -o $@ $< -ldl

$(BUILD)/daemon/%.o: daemon/%.c $(wildcard daemon/*.h) | $(BUILD)/daemon
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIB): $(DAEMON_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/parkd: $(MAIN_OBJ) $(LIB)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIB) | $(BUILD)/tests
	$(CC) $(ALL_CFLAGS) $(shell pkg-config --cflags cmocka) $(ALL_LDFLAGS) -o $@ $< $(LIB) $(PKG_LIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/tools/%: scripts/%.c | $(BUILD)/tools
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(PKG_LIBS)
$(BUILD)/tools/%: tests/tools/%.c | $(BUILD)/tools
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $< $(PKG_LIBS)

$(BUILD)/daemon $(BUILD)/tests $(BUILD)/tools:
	mkdir -p $@

unit: $(UNIT_BINS)

# The live map (README, "Live map"): npm packages pinned by web/package-lock.json, bundled by
# esbuild into $(BUILD)/web. Not part of `all`: the C build needs no node. `npm ci` runs when
# web/node_modules is missing or older than the lockfile.
WEB_OUT := $(abspath $(BUILD))/web
web:
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || \
	    { echo "make web: node and npm are needed for the live map (sh scripts/deps.sh installs them)" >&2; exit 1; }
	@if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules ]; then \
	    echo "make web: npm ci in web/"; \
	    (cd web && npm ci --no-audit --no-fund) && touch web/node_modules || exit 1; \
	fi
	cd web && node build.mjs --outdir $(WEB_OUT)

# The test command of the README: installs what is missing, builds strictly, runs everything.
check:
	sh scripts/deps.sh
	$(MAKE) WERROR=1 all unit
	$(MAKE) web
	BUILD=$(BUILD) sh tests/run.sh

check-asan:
	sh scripts/deps.sh
	$(MAKE) BUILD=build-asan SANITIZE=1 WERROR=1 OPT='-O1 -g' all unit
	$(MAKE) BUILD=build-asan web
	BUILD=build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 sh tests/run.sh

# The tests that exercise the HTTP thread beside the loop, under TSan (the libraries are not
# instrumented, so only parkd's own threads are checked: the loop and the HTTP server).
TSAN_TESTS ?= t14* t64* t09* t61* t80*
check-tsan:
	sh scripts/deps.sh
	$(MAKE) BUILD=build-tsan SANITIZE=thread WERROR=1 OPT='-O1 -g' all
	BUILD=build-tsan TESTS='$(TSAN_TESTS)' TSAN_OPTIONS='halt_on_error=1 exitcode=66' sh tests/run.sh

# Everything CI runs: check, check-asan, check-tsan, a fuzz smoke, the unit-file checks and
# tests/systemd/run.sh (SKIP where no container boots).
ci:
	sh scripts/deps.sh
	sh tests/ci.sh

bench:
	sh scripts/deps.sh
	$(MAKE) all
	BUILD=$(BUILD) sh tests/bench/run.sh

fuzz:
	sh scripts/deps.sh
	sh tests/fuzz/run.sh

demo:
	sh scripts/deps.sh
	$(MAKE) all
	$(MAKE) web || echo "make demo: the live map was not built; the demo runs without it" >&2
	BUILD=$(BUILD) sh scripts/demo.sh

# The Debian package (README, "Install"): debian/, built by dpkg-buildpackage -us -uc -b in a
# scratch copy of the tree; carries build/web when `make web` made it.
deb:
	sh scripts/deps.sh
	sh scripts/build-deb.sh $(BUILD)/deb

# The package under a real systemd 252 in a booted bookworm container (tests/systemd/run.sh);
# exit 77 = skipped (the machine cannot boot one), which tests/ci.sh shows as SKIP.
check-systemd: deb
	BUILD=$(BUILD) sh tests/systemd/run.sh

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SYSCONFDIR)/parkd $(DESTDIR)$(UNITDIR)
	install -m 0755 $(BUILD)/parkd $(DESTDIR)$(SBINDIR)/parkd
	test -e $(DESTDIR)$(SYSCONFDIR)/parkd/parkd.yaml || install -m 0644 config/parkd.yaml $(DESTDIR)$(SYSCONFDIR)/parkd/parkd.yaml
	if [ -f systemd/parkd.service ]; then sed 's|@SBINDIR@|$(SBINDIR)|g; s|@SYSCONFDIR@|$(SYSCONFDIR)|g' systemd/parkd.service > $(DESTDIR)$(UNITDIR)/parkd.service; chmod 0644 $(DESTDIR)$(UNITDIR)/parkd.service; fi
	for m in man/*.[0-9]; do [ -f "$$m" ] || continue; s=$${m##*.}; install -d $(DESTDIR)$(MANDIR)/man$$s; install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$$s/; done
	if [ -d $(BUILD)/web ]; then install -d $(DESTDIR)$(WEBDIR) && cp -R $(BUILD)/web/. $(DESTDIR)$(WEBDIR)/ && chmod -R u=rwX,go=rX $(DESTDIR)$(WEBDIR); fi

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/parkd $(DESTDIR)$(UNITDIR)/parkd.service
	rm -rf $(DESTDIR)$(WEBDIR)
	for m in man/*.[0-9]; do [ -f "$$m" ] || continue; s=$${m##*.}; rm -f $(DESTDIR)$(MANDIR)/man$$s/$${m##*/}; done

clean:
	rm -rf build build-asan
