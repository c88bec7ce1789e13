// nftables replies (tables, chains, rules with their expressions and comment userdata) as a
// receive buffer, each message to the decoder its NFT_MSG_* type names, as nft.list and
// echoing batches use them; other types pick one from the type.
#include "fuzz/fuzz_common.h"
#include "codec/nft.h"

using namespace vnl;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> buf = fuzz::aligned(data, size);
  MsgIter it(buf.data(), buf.size());
  while (const nlmsghdr* h = it.next()) {
    fuzz::expectCodecErrorsOnly([&] {
      switch (nft::nftMsgOf(h->nlmsg_type)) {
        case NFT_MSG_NEWTABLE: case NFT_MSG_DELTABLE: (void)nft::decodeTable(h); break;
        case NFT_MSG_NEWCHAIN: case NFT_MSG_DELCHAIN: (void)nft::decodeChain(h); break;
        case NFT_MSG_NEWRULE: case NFT_MSG_DELRULE: (void)nft::decodeRule(h); break;
        default:
          switch (h->nlmsg_type % 3) {
            case 0: (void)nft::decodeTable(h); break;
            case 1: (void)nft::decodeChain(h); break;
            default: (void)nft::decodeRule(h); break;
          }
      }
    });
  }
  return 0;
}
