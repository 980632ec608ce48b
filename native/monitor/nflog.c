/*
 * The packets the capture rules drop (UDP other than the DNS stub's, ICMP, anything not TCP),
 * reported as events. The rules log them to an NFLOG group; the socket bound to that group is
 * made inside the cell's network namespace (nflog_open, in the proxy-port child, which has
 * CAP_NET_ADMIN there) and read here, in the monitor, which has no capability in the cell.
 * Each drop is one `net.dropped` line, the first NFLOG_MAX_EVENTS in full, the rest counted in
 * `net.dropped.summary` lines.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "monitor.h"

#define NFLOG_GROUP	 7
#define NFLOG_MAX_EVENTS 256

int nflog_fd = -1;
static long reported, dropped_more, summarized;

static int nflog_config(int s, uint16_t type, const void *payload, uint16_t plen)
{
	struct {
		struct nlmsghdr h;
		struct nfgenmsg g;
		struct nlattr a;
		char payload[8];
	} req;
	memset(&req, 0, sizeof(req));
	req.h.nlmsg_len = (uint32_t)(NLMSG_LENGTH(sizeof(req.g)) + NLA_HDRLEN + NLA_ALIGN(plen));
	req.h.nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.g.nfgen_family = AF_UNSPEC;
	req.g.version = NFNETLINK_V0;
	req.g.res_id = htons(NFLOG_GROUP);
	req.a.nla_type = type;
	req.a.nla_len = (uint16_t)(NLA_HDRLEN + plen);
	memcpy(req.payload, payload, plen);
	if (send(s, &req, req.h.nlmsg_len, 0) < 0)
		return -1;
	char buf[256];
	ssize_t n = recv(s, buf, sizeof(buf), 0);
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	if (n < (ssize_t)sizeof(*h) || h->nlmsg_type != NLMSG_ERROR)
		return -1;
	int err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
	errno = -err;
	return err == 0 ? 0 : -1;
}

/* In the cell's network namespace: a socket bound to the group, copying packet headers. */
int nflog_open(void)
{
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (s < 0)
		return -1;
	struct sockaddr_nl a = { .nl_family = AF_NETLINK };
	struct nfulnl_msg_config_cmd bind_cmd = { .command = NFULNL_CFG_CMD_BIND };
	struct nfulnl_msg_config_mode mode = { .copy_range = htonl(64),
					       .copy_mode = NFULNL_COPY_PACKET };
	/* One packet per message, at once: the cell may end a moment after its last drop. */
	uint32_t qthresh = htonl(1);
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    nflog_config(s, NFULA_CFG_CMD, &bind_cmd, sizeof(bind_cmd)) < 0 ||
	    nflog_config(s, NFULA_CFG_MODE, &mode, sizeof(mode)) < 0 ||
	    nflog_config(s, NFULA_CFG_QTHRESH, &qthresh, sizeof(qthresh)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

static const char *proto_name(int p)
{
	switch (p) {
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_ICMP:
	case IPPROTO_ICMPV6:
		return "icmp";
	default:
		return "other";
	}
}

/* The IP header (and the UDP/TCP ports) of one logged packet. */
static void report_packet(const unsigned char *p, size_t len)
{
	char dst[INET6_ADDRSTRLEN] = "";
	int proto = -1;
	size_t l4 = 0;
	if (len >= 20 && (p[0] >> 4) == 4) {
		inet_ntop(AF_INET, p + 16, dst, sizeof(dst));
		proto = p[9];
		l4 = (size_t)(p[0] & 15) * 4;
	} else if (len >= 40 && (p[0] >> 4) == 6) {
		inet_ntop(AF_INET6, p + 24, dst, sizeof(dst));
		proto = p[6];
		l4 = 40;
	} else {
		return;
	}
	int dport = 0;
	if ((proto == IPPROTO_UDP || proto == IPPROTO_TCP) && len >= l4 + 4)
		dport = (p[l4 + 2] << 8) | p[l4 + 3];
	if (reported >= NFLOG_MAX_EVENTS) {
		dropped_more++;
		return;
	}
	reported++;
	struct out o = { 0 };
	out_fmt(&o,
		"{\"type\":\"net.dropped\",\"time\":%lld,\"proto\":\"%s\",\"dst\":\"%s\","
		"\"dport\":%d}",
		now_ms(), proto_name(proto), dst, dport);
	emit(&o);
}

void nflog_read(void)
{
	static char buf[65536];
	for (;;) {
		ssize_t n = recv(nflog_fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0)
			return;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type != ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET))
				continue;
			size_t off = NLMSG_LENGTH(sizeof(struct nfgenmsg));
			while (off + NLA_HDRLEN <= h->nlmsg_len) {
				struct nlattr *a = (struct nlattr *)((char *)h + off);
				if (a->nla_len < NLA_HDRLEN || off + a->nla_len > h->nlmsg_len)
					break;
				if ((a->nla_type & NLA_TYPE_MASK) == NFULA_PAYLOAD)
					report_packet((unsigned char *)a + NLA_HDRLEN,
						      a->nla_len - NLA_HDRLEN);
				off += NLA_ALIGN(a->nla_len);
			}
		}
	}
}

/* Cumulative, like the syscall summaries: emitted when it changed, at most once a second. */
void nflog_summary(void)
{
	if (dropped_more == summarized)
		return;
	summarized = dropped_more;
	struct out o = { 0 };
	out_fmt(&o, "{\"type\":\"net.dropped.summary\",\"count\":%ld}", dropped_more);
	emit(&o);
}
