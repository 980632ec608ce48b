/*
 * Transparent capture in the cell's network namespace (--capture RULES --nft PATH). Run by the
 * proxy-port child after it entered the cell's user and network namespaces, before the cell's
 * init runs:
 *   - a local default route (IPv4 and IPv6) on lo, so that every destination is reachable and
 *     every packet the task sends arrives at the namespace's own input path (there is no other
 *     device: nothing can leave);
 *   - the supervisor's nftables ruleset (src/net/capture.ts owns its text), loaded by the host's
 *     nft: TCP is diverted by TPROXY to the transparent listeners below, other UDP and ICMP are
 *     logged to an NFLOG group and dropped;
 *   - transparent TCP listeners (IP_TRANSPARENT: an accepted socket's local address is the
 *     original destination, which Node reads as socket.localAddress; Node cannot read
 *     SO_ORIGINAL_DST) and the DNS stub's UDP sockets on port 53, all on loopback;
 *   - the NFLOG socket, which the monitor keeps and reads (nflog.c).
 * The task gets no capability in this namespace, so it cannot change any of it.
 */
#include <errno.h>
#include <linux/capability.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "monitor.h"

const char *capture_rules;
const char *capture_nft;

/* A local route for every destination, in the main table (the local table keeps loopback's). */
static int add_local_default(int family)
{
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (s < 0)
		return -1;
	struct {
		struct nlmsghdr h;
		struct rtmsg r;
		struct rtattr a;
		int oif;
	} req;
	memset(&req, 0, sizeof(req));
	req.h.nlmsg_len = sizeof(req);
	req.h.nlmsg_type = RTM_NEWROUTE;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
	req.r.rtm_family = (unsigned char)family;
	req.r.rtm_table = RT_TABLE_MAIN;
	req.r.rtm_protocol = RTPROT_BOOT;
	req.r.rtm_scope = RT_SCOPE_HOST;
	req.r.rtm_type = RTN_LOCAL;
	req.a.rta_type = RTA_OIF;
	req.a.rta_len = RTA_LENGTH(sizeof(int));
	req.oif = 1; /* lo is always ifindex 1 */
	struct sockaddr_nl k = { .nl_family = AF_NETLINK };
	char buf[512];
	int rc = -1;
	if (sendto(s, &req, sizeof(req), 0, (struct sockaddr *)&k, sizeof(k)) < 0)
		goto out;
	ssize_t n = recv(s, buf, sizeof(buf), 0);
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	if (n >= (ssize_t)sizeof(*h) && h->nlmsg_type == NLMSG_ERROR) {
		int err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
		errno = -err;
		rc = err == 0 ? 0 : -1;
	}
out:
	close(s);
	return rc;
}

/*
 * nft runs as a separate program: after setns the process is not root of the cell's user
 * namespace, so exec would drop its capabilities; CAP_NET_ADMIN in the ambient set survives.
 */
static void __attribute__((noreturn)) exec_nft(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];
	if (syscall(SYS_capget, &hdr, data) == 0) {
		data[0].inheritable |= 1u << CAP_NET_ADMIN;
		syscall(SYS_capset, &hdr, data);
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0);
	char *const argv[] = { (char *)capture_nft, "-f", (char *)capture_rules, NULL };
	char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	execve(capture_nft, argv, envp);
	fprintf(stderr, "nanocell-monitor: exec %s: %s\n", capture_nft, strerror(errno));
	_exit(127);
}

static int load_rules(void)
{
	pid_t p = fork();
	if (p < 0)
		return -1;
	if (p == 0)
		exec_nft();
	int status;
	while (waitpid(p, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	errno = EPROTO;
	return -1;
}

/* Returns the step that failed, or NULL. */
const char *capture_setup(void)
{
	if (add_local_default(AF_INET) < 0)
		return "add the IPv4 local default route";
	if (add_local_default(AF_INET6) < 0)
		return "add the IPv6 local default route";
	if (load_rules() < 0)
		return "load the capture rules with nft (see its stderr)";
	return NULL;
}

static int bind_loopback(int s, int family, int port)
{
	if (family == AF_INET) {
		struct sockaddr_in a = { .sin_family = AF_INET,
					 .sin_port = htons((uint16_t)port),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		return bind(s, (struct sockaddr *)&a, sizeof(a));
	}
	int one = 1;
	setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	struct sockaddr_in6 a = { .sin6_family = AF_INET6,
				  .sin6_port = htons((uint16_t)port),
				  .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	return bind(s, (struct sockaddr *)&a, sizeof(a));
}

/* A TPROXY target: transparent, so that it may own connections to any address. */
int transparent_listener(int family, int port)
{
	int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (s < 0)
		return -1;
	int level = family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6;
	int opt = family == AF_INET ? IP_TRANSPARENT : IPV6_TRANSPARENT;
	if (setsockopt(s, level, opt, &one, sizeof(one)) < 0 ||
	    bind_loopback(s, family, port) < 0 || listen(s, 512) < 0) {
		close(s);
		return -1;
	}
	return s;
}

int loopback_udp(int family, int port)
{
	int s = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	if (bind_loopback(s, family, port) < 0) {
		close(s);
		return -1;
	}
	return s;
}
