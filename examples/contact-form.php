<?php
// A plain contact form handler, as thousands of sites have it. It needs no change
// to run under mailguard: mail() keeps its signature and return value.
$name = $_POST['name'] ?? 'Anna Kowalska';
$from = $_POST['email'] ?? 'anna@example.org';
$text = $_POST['message'] ?? "Hello,\nI would like to book a table for four on Friday.\n";

$headers = [
    'From' => 'Website <noreply@example.com>',
    'Reply-To' => $from,
    'Content-Type' => 'text/plain; charset=UTF-8',
];
$ok = mail('owner@example.com', "Contact form: message from $name", $text, $headers);
echo $ok ? "Thank you, your message was sent.\n" : "Sorry, your message could not be sent.\n";
