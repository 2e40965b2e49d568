// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness for the dtrack CLI's handling of the kernel's answers:
 * tools/nl.c, parse.c and client.c are linked in unchanged and the socket
 * I/O of libmnl (mnl_socket_sendto/recvfrom) is replaced by this file, so
 * that every answer the client reads is fuzz data: acks and errors with
 * extack TLVs, dumps split over several datagrams, stale sequence numbers,
 * nests, truncated attributes, the controller's family answer.
 *
 * Input: [op:1] then datagrams as [len:2 LE][len bytes].  op selects the
 * request: version, create, collect (kept and streamed), get tracker,
 * list, family lookup, or event parsing (what 'dtrack watch' does).
 * Besides memory errors, the results are checked: runs add up to the
 * pages counted, a successful create returns a non-zero id, a successful
 * collect has its first message.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "dtrack.h"

static const uint8_t *in;
static size_t in_len;

/*
 * The kernel only ever sends datagrams made of whole netlink messages.  A
 * message length with the top bit set makes libmnl's mnl_nlmsg_ok() (int
 * comparison) accept it and mnl_cb_run2() walk out of the buffer: a known
 * libmnl bug, reachable only by a datagram forged by another local
 * process (repro: tests/fuzz/repro/dtrack-reply-mnl-nlmsg-len).  Unless
 * FUZZ_KNOWN_BUGS=1, the last message of a datagram is made to end at
 * its end, as the kernel's do, and the fuzzer looks for other bugs.
 */
static void kernel_framing(char *buf, size_t len)
{
	static int enabled = -1;
	size_t off = 0;

	if (enabled < 0)
		enabled = !getenv("FUZZ_KNOWN_BUGS");
	while (enabled && off + sizeof(struct nlmsghdr) <= len) {
		struct nlmsghdr *nlh = (void *)(buf + off);

		if (nlh->nlmsg_len < sizeof(*nlh) || nlh->nlmsg_len > len - off)
			nlh->nlmsg_len = len - off;
		off += MNL_ALIGN(nlh->nlmsg_len);
	}
}

ssize_t mnl_socket_sendto(const struct mnl_socket *nl, const void *buf,
			  size_t len)
{
	(void)nl;
	(void)buf;
	return len;
}

ssize_t mnl_socket_recvfrom(const struct mnl_socket *nl, void *buf,
			    size_t bufsiz)
{
	size_t len;

	(void)nl;
	if (in_len < 2) {
		errno = EAGAIN;
		return -1;
	}
	len = in[0] | (in[1] << 8);
	in += 2;
	in_len -= 2;
	if (len > in_len)
		len = in_len;
	if (len > bufsiz) {
		/* the kernel truncates a datagram to the buffer */
		memcpy(buf, in, bufsiz);
		in += len;
		in_len -= len;
		kernel_framing(buf, bufsiz);
		return bufsiz;
	}
	memcpy(buf, in, len);
	kernel_framing(buf, len);
	in += len;
	in_len -= len;
	return len;
}

static void stream_cb(const struct dt_collect *c, const struct dt_run *run,
		      void *data)
{
	uint64_t *sum = data;

	assert(run->pages);
	assert(c->nr_msgs);
	*sum += run->pages;
}

static int event_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[DTRACK_A_MAX + 1] = {};
	struct dt_event e;

	(void)data;
	if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + sizeof(struct genlmsghdr))
		return MNL_CB_OK;
	if (dt_parse(nlh, tb))
		return MNL_CB_OK;
	dt_parse_event(tb, &e);
	return MNL_CB_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dt_nl nl = {
		.sock = (struct mnl_socket *)&nl,	/* never dereferenced */
		.family = 0x20,
		.buf_size = 65536,
	};
	int err;

	if (!size)
		return 0;
	nl.buf = malloc(nl.buf_size);
	if (!nl.buf)
		return 0;
	in = data + 1;
	in_len = size - 1;
	switch (data[0] % 7) {
	case 0: {
		struct dt_version v;

		err = dt_get_version(&nl, &v);
		if (!err)
			assert(v.has & DT_HAS(DTRACK_A_UAPI_VERSION));
		assert(memchr(v.version, 0, sizeof(v.version)));
		break;
	}
	case 1: {
		uint32_t id;

		err = dt_create(&nl, 1, 0x1000, 0x1000, 1, 0, &id);
		assert(err || id);
		break;
	}
	case 2: {
		struct dt_collect c;
		uint64_t sum = 0;

		if (data[0] & 0x80) {
			err = dt_collect_stream(&nl, 1, 0, &c, stream_cb, &sum);
			if (!err)
				assert(sum == c.pages);
			break;
		}
		err = dt_collect(&nl, 1, DTRACK_COLLECT_RESET, &c);
		if (!err) {
			for (size_t i = 0; i < c.nr_runs; i++) {
				assert(c.runs[i].pages);
				sum += c.runs[i].pages;
			}
			assert(sum == c.pages);
			assert(c.nr_msgs);
		} else {
			assert(!c.runs && !c.nr_runs);
		}
		dt_collect_free(&c);
		break;
	}
	case 3: {
		struct dt_tracker t;

		err = dt_get_tracker(&nl, 1, &t);
		assert(err || t.has);
		break;
	}
	case 4: {
		struct dt_tracker *ts = NULL;
		size_t n = 0;

		err = dt_list(&nl, &ts, &n);
		if (!err)
			assert(n == 0 || ts);
		free(ts);
		break;
	}
	case 5:
		err = dt_nl_resolve(&nl, DTRACK_GENL_NAME);
		break;
	default:
		while (in_len >= 2) {
			ssize_t n = mnl_socket_recvfrom(nl.sock, nl.buf,
							nl.buf_size);

			if (n < 0)
				break;
			mnl_cb_run(nl.buf, n, 0, 0, event_cb, NULL);
		}
		err = 0;
		break;
	}
	(void)err;
	assert(memchr(nl.extack, 0, sizeof(nl.extack)));
	free(nl.buf);
	return 0;
}
