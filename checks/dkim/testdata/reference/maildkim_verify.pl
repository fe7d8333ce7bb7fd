#!/usr/bin/perl
# Verify messages with Mail::DKIM (libmail-dkim-perl) for mxguard's
# comparison test (checks/dkim/reference_test.go).
#
# Usage: perl maildkim_verify.pl KEYS.json MESSAGE...
#
# KEYS.json maps key record names (selector._domainkey.domain, lower case)
# to their TXT text. Those are the only DNS answers Mail::DKIM gets:
# Mail::DKIM::DNS::query answers from them, and no socket can be opened
# nor any Net::DNS resolver made, so the machine's resolver is never
# asked. Prints one JSON object: for each message file, the list of its
# signatures' verdicts in header order, each {"result": ..., "detail": ...}
# as Mail::DKIM words them (pass, fail, invalid, temperror, ...).

# Before anything is compiled that could open a socket.
BEGIN {
    *CORE::GLOBAL::socket = sub { die "maildkim_verify: network access refused: DNS comes only from KEYS.json\n" };
}

use strict;
use warnings;

use JSON::PP;
use Mail::DKIM::DNS;
use Mail::DKIM::Verifier;
use Net::DNS;

my $keys = shift @ARGV or die "usage: maildkim_verify.pl KEYS.json MESSAGE...\n";
my $records = do {
    open my $fh, '<', $keys or die "$keys: $!\n";
    local $/;
    decode_json(<$fh>);
};

{
    no warnings 'redefine';
    *Net::DNS::Resolver::new = sub { die "maildkim_verify: no resolver: DNS comes only from KEYS.json\n" };
    # Mail::DKIM::DNS::query's contract: the RRs, or an empty list with
    # $@ set (NXDOMAIN, NODATA).
    *Mail::DKIM::DNS::query = sub {
        my ( $name, $type ) = @_;
        my $rec = $records->{ lc $name };
        if ( !defined $rec || $type ne 'TXT' ) {
            $@ = 'NXDOMAIN';
            return ();
        }
        my @strings = unpack '(a255)*', $rec;
        return ( Net::DNS::RR->new( name => $name, type => 'TXT', txtdata => \@strings ) );
    };
}

my %out;
for my $path (@ARGV) {
    my $dkim = Mail::DKIM::Verifier->new();
    open my $fh, '<:raw', $path or die "$path: $!\n";
    $dkim->load($fh);
    close $fh;
    $out{$path} = [ map { { result => $_->result, detail => $_->result_detail // '' } } $dkim->signatures ];
}
print JSON::PP->new->canonical->encode( \%out );
