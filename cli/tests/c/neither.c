/* A program that does no asynchronous I/O at all. */
#include <stdio.h>

int main(void)
{
    printf("hello\n");
    return 0;
}
