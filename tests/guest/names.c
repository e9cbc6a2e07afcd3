/* Prints what the C library's name services find in an image: the
 * address of localhost (from /etc/hosts), the user nobody (from
 * /etc/passwd) and the DNS servers /etc/resolv.conf lists. Exits 1 if a
 * lookup fails. */
#include <arpa/inet.h>
#include <netdb.h>
#include <pwd.h>
#include <stdio.h>

int main(void) {
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
    struct addrinfo *found;
    int error = getaddrinfo("localhost", "80", &hints, &found);
    if (error != 0) {
        printf("getaddrinfo: %s\n", gai_strerror(error));
        return 1;
    }
    char text[INET_ADDRSTRLEN];
    const struct sockaddr_in *address = (const struct sockaddr_in *)found->ai_addr;
    printf("localhost is %s\n", inet_ntop(AF_INET, &address->sin_addr, text, sizeof text));
    freeaddrinfo(found);
    const struct passwd *nobody = getpwnam("nobody");
    if (nobody == NULL) {
        printf("no user nobody\n");
        return 1;
    }
    printf("nobody is %u\n", (unsigned)nobody->pw_uid);
    FILE *resolver = fopen("/etc/resolv.conf", "r");
    if (resolver == NULL) {
        printf("no /etc/resolv.conf\n");
        return 1;
    }
    char line[256];
    while (fgets(line, sizeof line, resolver) != NULL) {
        printf("resolv.conf: %s", line);
    }
    fclose(resolver);
    return 0;
}
