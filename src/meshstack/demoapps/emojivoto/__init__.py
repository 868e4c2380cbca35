"""emojivoto, as real HTTP services with the real app's routes and call graph.

Three services, named and wired as in emojivoto's manifest:

* ``web`` (:mod:`.web`) serves the page and the JSON API the page uses
  (``/api/list``, ``/api/vote?choice=:shortcode:``, ``/api/leaderboard``) and calls
  the two services below at ``EMOJISVC_HOST`` and ``VOTINGSVC_HOST``;
* ``emoji`` (:mod:`.emoji`) lists the emoji and finds one by shortcode;
* ``voting`` (:mod:`.voting`) counts votes and reports the results.

The real services speak gRPC between ``web`` and the other two; these speak HTTP/1.1
with JSON bodies on the same method paths (``/emojivoto.v1.VotingService/VotePoop``
...), so an HTTP proxy in front of each sees one route per gRPC method, as Linkerd
does. Like the real app, voting for :poop: always fails (HTTP 500): a deliberate
failure that makes the app's success rate sit below 100% by design.
"""
